package genai

import (
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/usage"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"

	collectortracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

func fuzzSeed() *collectortracepb.ExportTraceServiceRequest {
	s := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{
			Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	i := func(k string, v int64) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{
			Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
	}
	sp := func(id, parent byte, attrs ...*commonpb.KeyValue) *tracepb.Span {
		out := &tracepb.Span{TraceId: traceID, SpanId: []byte{0, 0, 0, 0, 0, 0, 0, id},
			StartTimeUnixNano: 1, EndTimeUnixNano: 2, Attributes: attrs}
		if parent != 0 {
			out.ParentSpanId = []byte{0, 0, 0, 0, 0, 0, 0, parent}
		}
		return out
	}
	return &collectortracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			sp(3, 2, s(AttrOperationName, "chat"), s(AttrSystem, "anthropic"),
				i(AttrInputTokens, 10), i(AttrCacheReadTokens, 40), i(AttrTotalTokens, 55),
				i(AttrOutputTokens, 5), s("team", "x")),
			sp(4, 2, s(AttrOISpanKind, "LLM"), i(AttrOIPromptTokens, 9), i(AttrOIReasoning, 3),
				i(AttrOICompletionTokens, 4)),
			sp(2, 1, s(AttrOperationName, "execute_tool"), s(AttrToolName, "t")),
			sp(5, 1, s("http.method", "GET")),
			sp(1, 0, s(AttrOperationName, "invoke_agent"), s(AttrAgentName, "a"),
				s(AttrConversation, "c")),
		}}},
	}}}
}

// mapAndCheck maps t as the receiver does, stamps it through a trace join,
// and checks that every event is valid and encodes. Each run starts from a
// fresh join: state kept across runs would make coverage depend on the
// order of inputs and defeat the fuzzer's minimization.
func mapAndCheck(t *testing.T, m *Mapper, tr *otlp.Traces) {
	j := usage.NewTraceJoin(usage.JoinConfig{MaxTraces: 64, MaxStepsPerTrace: 64})
	var res Result
	m.Map("acme", tr, &res)
	if got := len(res.Events) + res.Skipped + len(res.Rejected); got != tr.SpanCount() {
		t.Fatalf("%d spans became %d events, %d skipped, %d rejected", tr.SpanCount(),
			len(res.Events), res.Skipped, len(res.Rejected))
	}
	for _, l := range res.Links {
		j.AddLink("acme", l.TraceID, l.SpanID, l.ParentSpanID)
	}
	for _, ev := range res.Events {
		j.Add(ev)
	}
	for _, ev := range res.Events {
		j.Apply(ev)
		if errs := usage.Validate(ev); len(errs) > 0 {
			t.Fatalf("mapped an invalid event: %v", errs)
		}
		if _, err := usage.Marshal(ev); err != nil {
			t.Fatalf("mapped an event that does not encode: %v", err)
		}
	}
}

func fuzzMapper(f *testing.F) *Mapper {
	cfg := defaultConfig()
	cfg.Labels = []LabelRule{{Label: "team", Attr: "team"}}
	m, err := NewMapper(cfg)
	if err != nil {
		f.Fatal(err)
	}
	return m
}

// FuzzMapProto decodes arbitrary protobuf bodies and maps them: nothing
// may panic, every span is accounted for, every event is valid.
func FuzzMapProto(f *testing.F) {
	seed, err := proto.Marshal(fuzzSeed())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	m := fuzzMapper(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr otlp.Traces
		if otlp.DecodeProto(b, &tr) != nil {
			return
		}
		mapAndCheck(t, m, &tr)
	})
}

// FuzzMapJSON does the same for OTLP/JSON bodies.
func FuzzMapJSON(f *testing.F) {
	seed, err := protojson.Marshal(fuzzSeed())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(jsonSeed(`{"key":"gen_ai.usage.input_tokens","value":{"intValue":"-5"}}`))
	m := fuzzMapper(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr otlp.Traces
		if otlp.DecodeJSON(b, &tr) != nil {
			return
		}
		mapAndCheck(t, m, &tr)
	})
}

// jsonSeed is an OTLP/JSON request of one span with the attribute attr.
func jsonSeed(attr string) []byte {
	return []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{` +
		`"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000001",` +
		`"endTimeUnixNano":"5","attributes":[` + attr + `]}]}]}]}`)
}
