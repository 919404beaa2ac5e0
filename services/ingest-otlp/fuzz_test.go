package ingestotlp

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/ingest-otlp/internal/genai"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

// checkingProducer stands in for Kafka: it decodes every record back and
// checks it, so the fuzzers cover the encoding too.
type checkingProducer struct {
	t testing.TB
}

func (p checkingProducer) Produce(_ context.Context, recs ...*kgo.Record) error {
	for _, r := range recs {
		ev := &eventv1.UsageEvent{}
		if err := kafka.UnmarshalProto(r, ev); err != nil {
			p.t.Fatalf("record does not decode: %v", err)
		}
		if errs := usage.Validate(ev); len(errs) > 0 {
			p.t.Fatalf("published an invalid event: %v", errs)
		}
		if string(r.Key) != string(usage.RecordKey(ev)) {
			p.t.Fatalf("record key %q, want %q", r.Key, usage.RecordKey(ev))
		}
	}
	return nil
}

// fuzzService builds the part of a receiver that export uses, for one
// fuzz run. Each run gets its own: a trace cache or pools kept across runs
// would make coverage depend on earlier inputs and defeat the fuzzer's
// minimization, and so would the goroutines of a gRPC server.
func fuzzService(t testing.TB) *Service {
	cfg := testConfig()
	cfg.LabelAttributes = []string{"team=app.team"}
	mcfg, err := cfg.mapping()
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := genai.NewMapper(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &Service{
		cfg: cfg, log: log.Discard(), mapper: mapper, metrics: m,
		cache: newTraceCache(cfg),
		pub:   newPublisher(checkingProducer{t}, testTopic),
	}
}

// richRequest has an agent, a tool, OpenInference and GenAI spans and a
// plain span, as seeds for the fuzzers.
func richRequest() *collectortracepb.ExportTraceServiceRequest {
	agent := chatSpan(9, 0)
	agent.Attributes = []*commonpb.KeyValue{
		strAttr("gen_ai.operation.name", "invoke_agent"), strAttr("gen_ai.agent.name", "a"),
		strAttr("gen_ai.conversation.id", "c"), strAttr("app.team", "t"),
	}
	tool := chatSpan(8, 0)
	tool.ParentSpanId = agent.SpanId
	tool.Attributes = []*commonpb.KeyValue{
		strAttr("openinference.span.kind", "TOOL"), strAttr("tool.name", "search"),
	}
	oi := chatSpan(7, 0)
	oi.ParentSpanId = tool.SpanId
	oi.Attributes = []*commonpb.KeyValue{
		strAttr("openinference.span.kind", "LLM"), strAttr("llm.model_name", "gpt-4.1"),
		strAttr("llm.provider", "azure"), intAttr("llm.token_count.prompt", 30),
		intAttr("llm.token_count.prompt_details.cache_read", 10),
		intAttr("llm.token_count.completion", 5), intAttr("llm.token_count.total", 35),
	}
	chat := chatSpan(6, 100)
	chat.ParentSpanId = agent.SpanId
	chat.Attributes = append(chat.Attributes, intAttr("gen_ai.usage.cache_read.input_tokens", 150))
	plain := &tracepb.Span{TraceId: testTraceID, SpanId: []byte{1, 1, 1, 1, 1, 1, 1, 1},
		ParentSpanId: agent.SpanId, Name: "GET /", StartTimeUnixNano: 1, EndTimeUnixNano: 2}
	return exportRequest(chat, oi, tool, plain, agent)
}

// FuzzExportProto runs arbitrary protobuf bodies through decoding, the
// GenAI mapping, the trace cache and record encoding: nothing may panic,
// and every published record must decode to a valid event.
func FuzzExportProto(f *testing.F) {
	f.Add(mustMarshal(f, richRequest()))
	f.Add(mustMarshal(f, exportRequest(chatSpan(1, -1), chatSpan(2, 5))))
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		w := &work{body: b}
		if otlp.DecodeProto(w.body, &w.traces) != nil {
			return
		}
		exportAndCheck(t, fuzzService(t), w)
	})
}

// FuzzExportJSON does the same for OTLP/JSON bodies.
func FuzzExportJSON(f *testing.F) {
	rich, err := protojson.Marshal(richRequest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rich)
	f.Add(jsonSeed(`{"key":"gen_ai.usage.input_tokens","value":{"intValue":"-5"}}`))
	f.Add(jsonSeed(`{"key":"gen_ai.usage.output_tokens","value":{"doubleValue":3}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w := &work{}
		if otlp.DecodeJSON(b, &w.traces) != nil {
			return
		}
		exportAndCheck(t, fuzzService(t), w)
	})
}

func exportAndCheck(t *testing.T, svc *Service, w *work) {
	resp, err := svc.export(context.Background(), testTenant, w)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	spans := w.traces.SpanCount()
	res := &w.result
	if got := len(res.Events) + res.Skipped + len(res.Rejected); got != spans {
		t.Fatalf("%d spans became %d events, %d skipped and %d rejected", spans,
			len(res.Events), res.Skipped, len(res.Rejected))
	}
	if resp.GetPartialSuccess().GetRejectedSpans() != int64(len(res.Rejected)) {
		t.Fatalf("partial success reports %d, rejected %d",
			resp.GetPartialSuccess().GetRejectedSpans(), len(res.Rejected))
	}
}

// jsonSeed is an OTLP/JSON request of one span with the attribute attr.
func jsonSeed(attr string) []byte {
	return []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{` +
		`"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000001",` +
		`"endTimeUnixNano":"5","attributes":[` + attr + `]}]}]}]}`)
}
