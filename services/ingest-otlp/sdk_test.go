package ingestotlp

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// agentTrace records one agent run with the real OpenTelemetry SDK:
//
//	invoke_agent support            (agent, session conv-42)
//	├── chat gpt-4o                 (cached + reasoning tokens)
//	├── execute_tool lookup_order   (tool)
//	│   └── chat claude             (nested call inside the tool)
//	└── GET /kb (no GenAI meaning)
//	    └── chat gpt-4o-mini        (parent is skipped, linked to the agent)
//
// Spans end children first, as real instrumentation ends them. It returns
// the ended spans in end order and the span names by hex span id.
func agentTrace(t testing.TB) ([]sdktrace.ReadOnlySpan, map[string]string) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	res := resource.NewSchemaless(
		attribute.String("service.name", "support-bot"),
		attribute.String("deployment.environment.name", "prod"),
	)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tr := tp.Tracer("costplane-test")

	ctx, agent := tr.Start(context.Background(), "invoke_agent support", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "invoke_agent"),
		attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.agent.id", "asst_1"),
		attribute.String("gen_ai.agent.name", "support"),
		attribute.String("gen_ai.conversation.id", "conv-42"),
		attribute.String("customer.id", "cust-9"),
	))
	chat(ctx, tr, "chat gpt-4o", "openai", "gpt-4o", 1200, 1000, 300, 100)

	toolCtx, tool := tr.Start(ctx, "execute_tool lookup_order", trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.tool.name", "lookup_order"),
	))
	chat(toolCtx, tr, "chat claude", "anthropic", "claude-haiku-4-5", 500, 0, 40, 0)
	tool.End()

	kbCtx, kb := tr.Start(ctx, "GET /kb", trace.WithAttributes(
		attribute.String("http.request.method", "GET")))
	chat(kbCtx, tr, "chat gpt-4o-mini", "openai", "gpt-4o-mini", 80, 0, 20, 0)
	kb.End()
	agent.End()

	names := map[string]string{}
	for _, s := range rec.Ended() {
		id := s.SpanContext().SpanID()
		names[hex.EncodeToString(id[:])] = s.Name()
	}
	return rec.Ended(), names
}

func chat(ctx context.Context, tr trace.Tracer, name, provider, model string,
	input, cached, output, reasoning int64,
) {
	_, s := tr.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.provider.name", provider),
		attribute.String("gen_ai.request.model", model),
		attribute.String("gen_ai.response.id", "resp-"+name),
		attribute.Int64("gen_ai.usage.input_tokens", input),
		attribute.Int64("gen_ai.usage.cache_read.input_tokens", cached),
		attribute.Int64("gen_ai.usage.output_tokens", output),
		attribute.Int64("gen_ai.usage.reasoning.output_tokens", reasoning),
	))
	time.Sleep(time.Millisecond)
	s.SetStatus(codes.Ok, "")
	s.End()
}

// stepView is what TestSDKExport checks of each event, by span name.
type stepView struct {
	Kind    eventv1.StepKind
	Agent   string
	Session string
	Parent  string
	Tool    string
	Tokens  map[eventv1.QuantityKind]int64
}

func viewOf(ev *eventv1.UsageEvent, names map[string]string) stepView {
	v := stepView{
		Kind: ev.GetStepKind(), Agent: ev.GetAgent().GetName(), Session: ev.GetSessionId(),
		Parent: names[ev.GetParentStepId()], Tool: ev.GetToolName(),
	}
	for _, q := range ev.GetQuantities() {
		if v.Tokens == nil {
			v.Tokens = map[eventv1.QuantityKind]int64{}
		}
		v.Tokens[q.GetKind()] = q.GetAmount()
	}
	return v
}

var wantAgentTrace = map[string]stepView{
	"invoke_agent support": {Kind: eventv1.StepKind_STEP_KIND_AGENT, Agent: "support",
		Session: "conv-42"},
	"chat gpt-4o": {Kind: eventv1.StepKind_STEP_KIND_LLM, Agent: "support", Session: "conv-42",
		Parent: "invoke_agent support", Tokens: map[eventv1.QuantityKind]int64{
			kindInput: 200, kindCacheRead: 1000, kindOutput: 200, kindReasoning: 100,
		}},
	"execute_tool lookup_order": {Kind: eventv1.StepKind_STEP_KIND_TOOL, Agent: "support",
		Session: "conv-42", Parent: "invoke_agent support", Tool: "lookup_order"},
	"chat claude": {Kind: eventv1.StepKind_STEP_KIND_LLM, Agent: "support", Session: "conv-42",
		Parent: "execute_tool lookup_order", Tokens: map[eventv1.QuantityKind]int64{
			kindInput: 500, kindOutput: 40,
		}},
	"chat gpt-4o-mini": {Kind: eventv1.StepKind_STEP_KIND_LLM, Agent: "support",
		Session: "conv-42", Parent: "invoke_agent support", Tokens: map[eventv1.QuantityKind]int64{
			kindInput: 80, kindOutput: 20,
		}},
}

const (
	kindInput     = eventv1.QuantityKind_QUANTITY_KIND_INPUT
	kindCacheRead = eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ
	kindOutput    = eventv1.QuantityKind_QUANTITY_KIND_OUTPUT
	kindReasoning = eventv1.QuantityKind_QUANTITY_KIND_REASONING
)

// TestSDKExport sends a trace with the SDK's OTLP exporters over gRPC and
// over HTTP, gzip-compressed, and reads the events back from Kafka.
func TestSDKExport(t *testing.T) {
	exporters := map[string]func(ctx context.Context, addr string) (sdktrace.SpanExporter, error){
		"grpc": func(ctx context.Context, addr string) (sdktrace.SpanExporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(addr),
				otlptracegrpc.WithInsecure(), otlptracegrpc.WithCompressor("gzip"),
				otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + testKey}))
		},
		"http": func(ctx context.Context, addr string) (sdktrace.SpanExporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(addr),
				otlptracehttp.WithInsecure(),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
				otlptracehttp.WithHeaders(map[string]string{DefaultKeyHeader: testKey}))
		},
	}
	for name, newExporter := range exporters {
		t.Run(name, func(t *testing.T) {
			st := startStack(t, stackOpts{})
			addr := st.grpcAddr
			if name == "http" {
				addr = st.httpAddr
			}
			ctx := context.Background()
			exp, err := newExporter(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = exp.Shutdown(ctx) }()

			spans, names := agentTrace(t)
			if err := exp.ExportSpans(ctx, spans); err != nil {
				t.Fatalf("ExportSpans: %v", err)
			}
			checkAgentTrace(t, st.readEvents(t, len(wantAgentTrace), 10*time.Second), names,
				spans[0].SpanContext().TraceID(), wantAgentTrace)
		})
	}
}

func checkAgentTrace(t *testing.T, evs []keyedEvent, names map[string]string,
	traceID trace.TraceID, want map[string]stepView,
) {
	t.Helper()
	traceHex := hex.EncodeToString(traceID[:])
	got := map[string]stepView{}
	partitions := map[int32]bool{}
	for _, e := range evs {
		got[names[e.ev.GetStepId()]] = viewOf(e.ev, names)
		partitions[e.partition] = true
		if e.key != testTenant+"/"+traceHex || e.ev.GetRunId() != traceHex ||
			e.ev.GetTraceId() != traceHex {
			t.Errorf("%s: key %q, run %q, trace %q; want the trace %s as run and key",
				names[e.ev.GetStepId()], e.key, e.ev.GetRunId(), e.ev.GetTraceId(), traceHex)
		}
		if e.ev.GetApp() != "support-bot" || e.ev.GetEnvironment() != "prod" ||
			e.ev.GetTenantId() != testTenant {
			t.Errorf("%s: app %q, environment %q, tenant %q", names[e.ev.GetStepId()],
				e.ev.GetApp(), e.ev.GetEnvironment(), e.ev.GetTenantId())
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events on Kafka (-want +got):\n%s", diff)
	}
	if len(partitions) != 1 {
		t.Errorf("the trace spread over partitions %v, want one", partitions)
	}
}
