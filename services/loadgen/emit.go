package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Attribute names of the OpenTelemetry GenAI semantic conventions and the
// resource conventions, as services/ingest-otlp reads them.
const (
	attrOperation       = "gen_ai.operation.name"
	attrProvider        = "gen_ai.provider.name"
	attrRequestModel    = "gen_ai.request.model"
	attrRequestMaxToks  = "gen_ai.request.max_tokens"
	attrResponseModel   = "gen_ai.response.model"
	attrResponseID      = "gen_ai.response.id"
	attrFinishReasons   = "gen_ai.response.finish_reasons"
	attrConversation    = "gen_ai.conversation.id"
	attrInputTokens     = "gen_ai.usage.input_tokens"
	attrOutputTokens    = "gen_ai.usage.output_tokens"
	attrCacheRead       = "gen_ai.usage.cache_read.input_tokens"
	attrCacheCreation   = "gen_ai.usage.cache_creation.input_tokens"
	attrReasoningTokens = "gen_ai.usage.reasoning.output_tokens"
	attrAgentName       = "gen_ai.agent.name"
	attrAgentID         = "gen_ai.agent.id"
	attrAgentVersion    = "gen_ai.agent.version"
	attrToolName        = "gen_ai.tool.name"
	attrToolCallID      = "gen_ai.tool.call.id"
	attrToolType        = "gen_ai.tool.type"
	attrErrorType       = "error.type"
	attrServerAddress   = "server.address"
	// The attributes services/ingest-otlp reads customers and users from
	// by default.
	attrCustomer = "customer.id"
	attrUser     = "user.id"

	attrServiceName    = "service.name"
	attrServiceVersion = "service.version"
	attrEnvironment    = "deployment.environment.name"
)

// Operation names.
const (
	opInvokeAgent     = "invoke_agent"
	opChat            = "chat"
	opGenerateContent = "generate_content"
	opExecuteTool     = "execute_tool"
)

// scopeName is the instrumentation scope of the generated spans.
const scopeName = "github.com/costplane/costplane/services/loadgen"

// emitter records planned runs as spans through one tracer provider per
// app, since an app is a resource.
type emitter struct {
	providers []*sdktrace.TracerProvider
	tracers   map[string]trace.Tracer
}

func newEmitter(exp sdktrace.SpanExporter, ids sdktrace.IDGenerator) *emitter {
	e := &emitter{tracers: map[string]trace.Tracer{}}
	for _, a := range fleet {
		tp := sdktrace.NewTracerProvider(
			// Blocking: at high rates the generator waits rather than
			// dropping spans it already counted.
			sdktrace.WithBatcher(exp, sdktrace.WithBlocking(),
				sdktrace.WithBatchTimeout(time.Second)),
			sdktrace.WithResource(appResource(a)),
			sdktrace.WithIDGenerator(ids),
			sdktrace.WithSampler(sdktrace.AlwaysSample()),
		)
		e.providers = append(e.providers, tp)
		e.tracers[a.name] = tp.Tracer(scopeName)
	}
	return e
}

func appResource(a app) *resource.Resource {
	return resource.NewSchemaless(
		attribute.String(attrServiceName, a.name),
		attribute.String(attrServiceVersion, "2026.12.1"),
		attribute.String(attrEnvironment, a.env),
		attribute.String("telemetry.sdk.name", "opentelemetry"),
		attribute.String("telemetry.sdk.language", "go"),
		attribute.String("telemetry.sdk.version", sdk.Version()),
	)
}

// shutdown exports what is buffered and stops every provider.
func (e *emitter) shutdown(ctx context.Context) error {
	var errs []error
	for _, tp := range e.providers {
		if err := tp.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutting down a tracer provider: %w", err))
		}
	}
	return errors.Join(errs...)
}

// emit records r as a trace that ends at end and returns its trace id and
// the number of spans made.
func (e *emitter) emit(ctx context.Context, r *runPlan, end time.Time) (trace.TraceID, int) {
	tracer := e.tracers[r.app.name]
	start := end.Add(-r.total)
	who := []attribute.KeyValue{
		attribute.String(attrConversation, r.session.id),
		attribute.String(attrCustomer, r.session.customer),
		attribute.String(attrUser, r.session.user),
	}

	ctx, root := tracer.Start(ctx, opInvokeAgent+" "+r.agent.name,
		trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(agentAttrs(r)...), trace.WithAttributes(who...))
	for i := range r.steps {
		emitStep(ctx, tracer, r, i, start, who)
	}
	if r.failed {
		root.SetStatus(codes.Error, "model calls kept failing")
		root.SetAttributes(attribute.String(attrErrorType, "AgentError"))
	}
	root.End(trace.WithTimestamp(end))

	return root.SpanContext().TraceID(), len(r.steps) + 1
}

func agentAttrs(r *runPlan) []attribute.KeyValue {
	m := r.agent.models[0]
	return []attribute.KeyValue{
		attribute.String(attrOperation, opInvokeAgent),
		attribute.String(attrProvider, m.provider),
		attribute.String(attrRequestModel, m.request),
		attribute.String(attrAgentName, r.agent.name),
		attribute.String(attrAgentID, r.agent.id),
		attribute.String(attrAgentVersion, r.agent.version),
	}
}

func emitStep(ctx context.Context, tracer trace.Tracer, r *runPlan, i int, start time.Time,
	who []attribute.KeyValue,
) {
	st := r.steps[i]
	name, kind, attrs := toolSpan(st)
	if st.kind == stepChat {
		name, kind, attrs = chatSpan(st, nextIsTool(r, i))
	}

	_, span := tracer.Start(ctx, name, trace.WithTimestamp(start.Add(st.start)),
		trace.WithSpanKind(kind), trace.WithAttributes(attrs...), trace.WithAttributes(who...))
	if st.errType != "" {
		span.SetStatus(codes.Error, st.errType)
		span.SetAttributes(attribute.String(attrErrorType, st.errType))
	}
	span.End(trace.WithTimestamp(start.Add(st.end)))
}

func nextIsTool(r *runPlan, i int) bool {
	return i+1 < len(r.steps) && r.steps[i+1].kind == stepTool
}

func toolSpan(st step) (string, trace.SpanKind, []attribute.KeyValue) {
	return opExecuteTool + " " + st.tool, trace.SpanKindInternal, []attribute.KeyValue{
		attribute.String(attrOperation, opExecuteTool),
		attribute.String(attrToolName, st.tool),
		attribute.String(attrToolCallID, st.callID),
		attribute.String(attrToolType, "function"),
	}
}

func chatSpan(st step, toolNext bool) (string, trace.SpanKind, []attribute.KeyValue) {
	m := st.model
	op := opChat
	if m.provider == "gcp.gemini" {
		op = opGenerateContent
	}
	attrs := []attribute.KeyValue{
		attribute.String(attrOperation, op),
		attribute.String(attrProvider, m.provider),
		attribute.String(attrRequestModel, m.request),
		attribute.Int(attrRequestMaxToks, 8192),
		attribute.String(attrServerAddress, m.server),
	}
	if st.errType == "" {
		attrs = append(attrs, answerAttrs(st, toolNext)...)
	}
	return op + " " + m.request, trace.SpanKindClient, attrs
}

// answerAttrs are the attributes of a call that returned.
func answerAttrs(st step, toolNext bool) []attribute.KeyValue {
	finish := "stop"
	if toolNext {
		finish = "tool_calls"
	}
	t := st.tokens
	attrs := []attribute.KeyValue{
		attribute.String(attrResponseModel, st.model.response),
		attribute.String(attrResponseID, st.respID),
		attribute.StringSlice(attrFinishReasons, []string{finish}),
		attribute.Int(attrInputTokens, t.input),
		attribute.Int(attrOutputTokens, t.output),
	}
	if st.model.caching != cacheNone {
		attrs = append(attrs, attribute.Int(attrCacheRead, t.cacheRead))
	}
	if st.model.caching == cacheExplicit {
		attrs = append(attrs, attribute.Int(attrCacheCreation, t.cacheWrite))
	}
	if st.model.reasoning {
		attrs = append(attrs, attribute.Int(attrReasoningTokens, t.reasoning))
	}
	return attrs
}
