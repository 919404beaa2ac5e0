package genai

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

var (
	traceID = []byte{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
		0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}
	spanID   = []byte{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31}
	parentID = []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	t0       = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
)

const (
	traceHexID  = "0af7651916cd43dd8448eb211c80319c"
	spanHexID   = "b7ad6b7169203331"
	parentHexID = "00f067aa0ba902b7"
)

func str(k, v string) otlp.KeyValue {
	return otlp.KeyValue{Key: k, Value: otlp.Value{Kind: otlp.KindString, Str: v}}
}

func num(k string, v int64) otlp.KeyValue {
	return otlp.KeyValue{Key: k, Value: otlp.Value{Kind: otlp.KindInt, Int: v}}
}

func dbl(k string, v float64) otlp.KeyValue {
	return otlp.KeyValue{Key: k, Value: otlp.Value{Kind: otlp.KindDouble, Double: v}}
}

func span(name string, attrs ...otlp.KeyValue) otlp.Span {
	return otlp.Span{
		TraceID: traceID, SpanID: spanID, ParentSpanID: parentID, Name: name,
		StartNanos: uint64(t0.UnixNano()),
		EndNanos:   uint64(t0.Add(1500 * time.Millisecond).UnixNano()),
		Attrs:      attrs,
	}
}

func resource(spans ...otlp.Span) *otlp.Traces {
	return &otlp.Traces{Resources: []otlp.Resource{{
		Attrs: []otlp.KeyValue{
			str(AttrServiceName, "support-bot"),
			str(AttrDeploymentEnvOld, "staging"),
			str(AttrDeploymentEnvironment, "prod"),
			str("customer.id", "cust-from-resource"),
		},
		Spans: spans,
	}}}
}

func mapOne(t *testing.T, cfg Config, s otlp.Span) Result {
	t.Helper()
	m, err := NewMapper(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	m.Map("acme", resource(s), &res)
	return res
}

func defaultConfig() Config {
	return Config{
		SessionAttrs:  []string{AttrConversation, "session.id"},
		CustomerAttrs: []string{"customer.id"},
		UserAttrs:     []string{"user.id", "enduser.id"},
	}
}

type buckets map[eventv1.QuantityKind]int64

func bucketsOf(ev *eventv1.UsageEvent) buckets {
	out := buckets{}
	for _, q := range ev.GetQuantities() {
		out[q.GetKind()] = q.GetAmount()
	}
	return out
}

const (
	kIn      = eventv1.QuantityKind_QUANTITY_KIND_INPUT
	kRead    = eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ
	kWrite   = eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M
	kOut     = eventv1.QuantityKind_QUANTITY_KIND_OUTPUT
	kReason  = eventv1.QuantityKind_QUANTITY_KIND_REASONING
	kInAudio = eventv1.QuantityKind_QUANTITY_KIND_INPUT_AUDIO
)

// TestTokenConventions maps one chat span per provider convention and
// checks the normalized buckets: non-overlapping, adding up to what the
// span reported.
func TestTokenConventions(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(*Config)
		attrs     []otlp.KeyValue
		provider  string
		model     string
		want      buckets
		wantFlags string
	}{{
		name: "openai cached and reasoning inside the totals",
		attrs: []otlp.KeyValue{
			str(AttrOperationName, "chat"), str(AttrProviderName, "openai"),
			str(AttrRequestModel, "o4-mini"), str(AttrResponseModel, "o4-mini-2025-04-16"),
			num(AttrInputTokens, 2000), num(AttrCacheReadTokens, 1500),
			num(AttrOutputTokens, 900), num(AttrReasoningTokens, 700),
		},
		provider: "openai", model: "o4-mini-2025-04-16",
		want: buckets{kIn: 500, kRead: 1500, kOut: 200, kReason: 700},
	}, {
		name: "anthropic cache read and creation inside the otel input",
		attrs: []otlp.KeyValue{
			str(AttrOperationName, "chat"), str(AttrProviderName, "anthropic"),
			str(AttrRequestModel, "claude-sonnet-4-5"),
			num(AttrInputTokens, 3050), num(AttrCacheReadTokens, 2500),
			num(AttrCacheCreationTokens, 500), num(AttrOutputTokens, 120),
		},
		provider: "anthropic", model: "claude-sonnet-4-5",
		want: buckets{kIn: 50, kRead: 2500, kWrite: 500, kOut: 120},
	}, {
		name: "anthropic raw counts recognised by the total",
		attrs: []otlp.KeyValue{
			str(AttrOperationName, "chat"), str(AttrSystem, "anthropic"),
			str(AttrRequestModel, "claude-sonnet-4-5"),
			num(AttrInputTokens, 50), num(AttrCacheReadTokens, 2500),
			num(AttrCacheCreationTokens, 500), num(AttrOutputTokens, 120),
			num(AttrTotalTokens, 3170),
		},
		provider: "anthropic", model: "claude-sonnet-4-5",
		want: buckets{kIn: 50, kRead: 2500, kWrite: 500, kOut: 120},
	}, {
		name: "anthropic raw counts by configured convention",
		cfg: func(c *Config) {
			c.Conventions = map[string]usage.Convention{"anthropic": usage.ConventionAnthropic}
		},
		attrs: []otlp.KeyValue{
			str(AttrOperationName, "chat"), str(AttrProviderName, "anthropic"),
			str(AttrRequestModel, "claude-haiku-4-5"),
			num(AttrInputTokens, 50), num(AttrCacheReadTokens, 2500), num(AttrOutputTokens, 10),
		},
		provider: "anthropic", model: "claude-haiku-4-5",
		want: buckets{kIn: 50, kRead: 2500, kOut: 10},
	}, {
		name: "bedrock cross-region profile",
		attrs: []otlp.KeyValue{
			str(AttrOperationName, "chat"), str(AttrSystem, "aws.bedrock"),
			str(AttrRequestModel, "us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
			num(AttrInputTokens, 1200), num(AttrCacheReadTokens, 1000), num(AttrOutputTokens, 80),
		},
		provider: "aws.bedrock", model: "anthropic.claude-3-7-sonnet-20250219-v1:0",
		want: buckets{kIn: 200, kRead: 1000, kOut: 80},
	}, {
		name: "gemini thoughts beside candidates, told by the total",
		attrs: []otlp.KeyValue{
			str(AttrOperationName, "generate_content"), str(AttrSystem, "gemini"),
			str(AttrRequestModel, "models/gemini-2.5-pro"),
			num(AttrInputTokens, 400), num(AttrCacheReadTokens, 100),
			num(AttrOutputTokens, 60), num(AttrReasoningTokens, 240), num(AttrTotalTokens, 700),
		},
		provider: "gcp.gemini", model: "gemini-2.5-pro",
		want: buckets{kIn: 300, kRead: 100, kOut: 60, kReason: 240},
	}, {
		name: "deprecated prompt and completion tokens, old system spelling",
		attrs: []otlp.KeyValue{
			str(AttrSystem, "az.ai.openai"), str(AttrRequestModel, "gpt-4o"),
			num(AttrPromptTokens, 700), dbl(AttrCompletionTokens, 42),
		},
		provider: "azure.ai.openai", model: "gpt-4o",
		want: buckets{kIn: 700, kOut: 42},
	}, {
		name: "openinference llm span",
		attrs: []otlp.KeyValue{
			str(AttrOISpanKind, "LLM"), str(AttrOIProvider, "openai"),
			str(AttrOIModel, "gpt-4.1"), str(AttrOIPromptTokens, "1000"),
			num(AttrOICacheRead, 400), num(AttrOIPromptAudio, 100),
			num(AttrOICompletionTokens, 300), num(AttrOIReasoning, 100),
			num(AttrOITotalTokens, 1300),
		},
		provider: "openai", model: "gpt-4.1",
		want: buckets{kIn: 500, kRead: 400, kInAudio: 100, kOut: 200, kReason: 100},
	}, {
		name: "cache above input is recorded and flagged",
		attrs: []otlp.KeyValue{
			str(AttrOperationName, "chat"), str(AttrProviderName, "xai"),
			str(AttrRequestModel, "grok-4"), num(AttrInputTokens, 10),
			num(AttrCacheReadTokens, 50), num(AttrOutputTokens, 5),
		},
		provider: "x_ai", model: "grok-4",
		want:      buckets{kRead: 50, kOut: 5},
		wantFlags: "input_details_exceed_input",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			res := mapOne(t, cfg, span("chat", tc.attrs...))
			if len(res.Events) != 1 {
				t.Fatalf("got %d events, rejections %v; want 1 event", len(res.Events), res.Rejected)
			}
			ev := res.Events[0]
			if ev.GetProvider() != tc.provider || ev.GetModel() != tc.model {
				t.Errorf("provider, model = %q, %q; want %q, %q",
					ev.GetProvider(), ev.GetModel(), tc.provider, tc.model)
			}
			if diff := cmp.Diff(tc.want, bucketsOf(ev)); diff != "" {
				t.Errorf("buckets (-want +got):\n%s", diff)
			}
			if got := ev.GetLabels()[FlagsLabel]; got != tc.wantFlags {
				t.Errorf("flags label = %q, want %q", got, tc.wantFlags)
			}
		})
	}
}

func TestChatEvent(t *testing.T) {
	cfg := defaultConfig()
	cfg.Labels = []LabelRule{{Label: "team", Attr: "app.team"}, {Label: "feature", Attr: "feature"}}
	s := span("chat gpt-4o",
		str(AttrOperationName, "chat"), str(AttrProviderName, "openai"),
		str(AttrRequestModel, "gpt-4o"), str(AttrResponseModel, "gpt-4o-2024-08-06"),
		str(AttrResponseID, "chatcmpl-123"), str(AttrConversation, "conv-1"),
		str("session.id", "loses-to-conversation"), num(AttrInputTokens, 100),
		num(AttrOutputTokens, 20), str(AttrOpenAIResponseTier, "default"),
		str("user.id", "u-7"), str("app.team", "support"), num("feature", 42),
		str(AttrAgentName, "triage"),
	)
	s.StatusCode = 2
	res := mapOne(t, cfg, s)

	want := &eventv1.UsageEvent{
		EventId:      "span:" + traceHexID + ":" + spanHexID,
		TenantId:     "acme",
		DedupKey:     "openai/chatcmpl-123",
		Source:       &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_OTLP, Name: "otlp"},
		StartTime:    timestamppb.New(t0),
		EndTime:      timestamppb.New(t0.Add(1500 * time.Millisecond)),
		Granularity:  eventv1.Granularity_GRANULARITY_REQUEST,
		RequestCount: 1,
		Provider:     "openai",
		Model:        "gpt-4o-2024-08-06",
		ModelVersion: "gpt-4o-2024-08-06",
		Operation:    "chat",
		ServiceTier:  "standard",
		Quantities: []*eventv1.Quantity{
			{Kind: kIn, Unit: eventv1.Unit_UNIT_TOKENS, Amount: 100},
			{Kind: kOut, Unit: eventv1.Unit_UNIT_TOKENS, Amount: 20},
		},
		App:          "support-bot",
		Agent:        &eventv1.Agent{Name: "triage"},
		SessionId:    "conv-1",
		RunId:        traceHexID,
		StepId:       spanHexID,
		ParentStepId: parentHexID,
		StepKind:     eventv1.StepKind_STEP_KIND_LLM,
		CustomerId:   "cust-from-resource",
		UserId:       "u-7",
		Environment:  "prod",
		Labels:       map[string]string{"team": "support", "feature": "42"},
		Status:       eventv1.CallStatus_CALL_STATUS_ERROR,
		Latency:      durationpb.New(1500 * time.Millisecond),
		TraceId:      traceHexID,
	}
	if len(res.Events) != 1 {
		t.Fatalf("got %d events, rejections %v; want 1", len(res.Events), res.Rejected)
	}
	if diff := cmp.Diff(want, res.Events[0], protocmp.Transform()); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
}

func TestStepKinds(t *testing.T) {
	tests := []struct {
		name     string
		span     otlp.Span
		kind     eventv1.StepKind
		agent    *eventv1.Agent
		tool     string
		session  string
		noTokens bool
	}{{
		name: "invoke_agent is an agent step without tokens",
		span: span("invoke_agent planner", str(AttrOperationName, "invoke_agent"),
			str(AttrAgentID, "asst_1"), str(AttrAgentName, "planner"),
			str(AttrAgentVersion, "3"), str(AttrConversation, "conv-9"),
			// Some frameworks sum their children's usage onto the agent
			// span; counting it would count every token twice.
			num(AttrInputTokens, 5000), num(AttrOutputTokens, 700)),
		kind:    eventv1.StepKind_STEP_KIND_AGENT,
		agent:   &eventv1.Agent{Id: "asst_1", Name: "planner", Version: "3"},
		session: "conv-9", noTokens: true,
	}, {
		name:  "agent named only by the span",
		span:  span("invoke_agent researcher", str(AttrOperationName, "invoke_agent")),
		kind:  eventv1.StepKind_STEP_KIND_AGENT,
		agent: &eventv1.Agent{Name: "researcher"}, noTokens: true,
	}, {
		name: "execute_tool is a tool step",
		span: span("execute_tool web_search", str(AttrOperationName, "execute_tool"),
			str(AttrToolName, "web_search")),
		kind: eventv1.StepKind_STEP_KIND_TOOL, tool: "web_search", noTokens: true,
	}, {
		name: "openinference agent and tool",
		span: span("lookup", str(AttrOISpanKind, "TOOL"), str(AttrOIToolName, "lookup_order"),
			str("session.id", "s-1")),
		kind: eventv1.StepKind_STEP_KIND_TOOL, tool: "lookup_order", session: "s-1",
		noTokens: true,
	}, {
		name: "embeddings",
		span: span("embeddings", str(AttrOperationName, "embeddings"),
			str(AttrProviderName, "cohere"), str(AttrRequestModel, "embed-v4"),
			num(AttrInputTokens, 64)),
		kind: eventv1.StepKind_STEP_KIND_EMBEDDING,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mapOne(t, defaultConfig(), tc.span)
			if len(res.Events) != 1 {
				t.Fatalf("got %d events, rejections %v; want 1", len(res.Events), res.Rejected)
			}
			ev := res.Events[0]
			if ev.GetStepKind() != tc.kind || ev.GetToolName() != tc.tool ||
				ev.GetSessionId() != tc.session {
				t.Errorf("kind, tool, session = %s, %q, %q; want %s, %q, %q", ev.GetStepKind(),
					ev.GetToolName(), ev.GetSessionId(), tc.kind, tc.tool, tc.session)
			}
			if diff := cmp.Diff(tc.agent, ev.GetAgent(), protocmp.Transform()); diff != "" {
				t.Errorf("agent (-want +got):\n%s", diff)
			}
			if got := len(ev.GetQuantities()) == 0; got != tc.noTokens {
				t.Errorf("quantities %v, want none: %v", ev.GetQuantities(), tc.noTokens)
			}
		})
	}
}

func TestSkippedSpans(t *testing.T) {
	tests := []struct {
		name string
		span otlp.Span
	}{
		{"plain http span", span("GET /orders", str("http.request.method", "GET"))},
		{"create_agent costs nothing", span("create_agent", str(AttrOperationName, "create_agent"))},
		{"openinference chain repeats its children", span("chain",
			str(AttrOISpanKind, "CHAIN"), num(AttrOIPromptTokens, 10))},
		{"provider without usage", span("x", str(AttrProviderName, "openai"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mapOne(t, defaultConfig(), tc.span)
			if len(res.Events) != 0 || res.Skipped != 1 || len(res.Rejected) != 0 {
				t.Fatalf("events %d, skipped %d, rejected %d; want only one skipped",
					len(res.Events), res.Skipped, len(res.Rejected))
			}
			want := []Link{{TraceID: traceHexID, SpanID: spanHexID, ParentSpanID: parentHexID}}
			if diff := cmp.Diff(want, res.Links); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRejectedSpans(t *testing.T) {
	chat := func(mut func(*otlp.Span), attrs ...otlp.KeyValue) otlp.Span {
		s := span("chat", append([]otlp.KeyValue{str(AttrOperationName, "chat")}, attrs...)...)
		if mut != nil {
			mut(&s)
		}
		return s
	}
	tests := []struct {
		name   string
		span   otlp.Span
		reason string
		detail string
	}{
		{"negative tokens", chat(nil, num(AttrInputTokens, -3)), ReasonTokenCount,
			"gen_ai.usage.input_tokens must be a non-negative integer"},
		{"fractional tokens", chat(nil, dbl(AttrOutputTokens, 1.5)), ReasonTokenCount,
			"gen_ai.usage.output_tokens must be"},
		{"text tokens", chat(nil, str(AttrOIPromptTokens, "many")), ReasonTokenCount,
			"llm.token_count.prompt must be"},
		{"short trace id", chat(func(s *otlp.Span) { s.TraceID = traceID[:8] }), ReasonTraceID,
			"trace_id must be 16 bytes"},
		{"zero span id", chat(func(s *otlp.Span) { s.SpanID = make([]byte, 8) }), ReasonSpanID,
			"span_id must be 8 bytes"},
		{"bad parent", chat(func(s *otlp.Span) { s.ParentSpanID = []byte{1} }),
			ReasonParentSpanID, "parent_span_id"},
		{"time runs backwards", chat(func(s *otlp.Span) { s.StartNanos = s.EndNanos + 1 }),
			ReasonTimestamps, "start_time_unix_nano is after"},
		{"no end", chat(func(s *otlp.Span) { s.EndNanos = 0; s.StartNanos = 0 }),
			ReasonTimestamps, "end_time_unix_nano is required"},
		{"control characters in the model", chat(nil, str(AttrRequestModel, "gpt\x00"),
			num(AttrInputTokens, 1)), ReasonInvalidEvent, "model: must not contain control"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := mapOne(t, defaultConfig(), tc.span)
			if len(res.Events) != 0 || len(res.Rejected) != 1 {
				t.Fatalf("events %d, rejected %v; want one rejection", len(res.Events), res.Rejected)
			}
			r := res.Rejected[0]
			if r.Reason != tc.reason || !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("rejection = %+v, want reason %s and detail containing %q",
					r, tc.reason, tc.detail)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	rules, err := ParseLabelRules([]string{"team=app.team", "feature"})
	if err != nil {
		t.Fatal(err)
	}
	want := []LabelRule{{"team", "app.team"}, {"feature", "feature"}}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("label rules (-want +got):\n%s", diff)
	}
	if _, err := ParseLabelRules([]string{"=x"}); err == nil {
		t.Error("ParseLabelRules accepted an empty label")
	}

	convs, err := ParseConventions([]string{"Anthropic=anthropic", "vertex_ai=gemini"})
	if err != nil {
		t.Fatal(err)
	}
	wantConvs := map[string]usage.Convention{
		"anthropic": usage.ConventionAnthropic, "gcp.vertex_ai": usage.ConventionGemini,
	}
	if diff := cmp.Diff(wantConvs, convs); diff != "" {
		t.Errorf("conventions (-want +got):\n%s", diff)
	}
	if _, err := ParseConventions([]string{"openai=weird"}); err == nil {
		t.Error("ParseConventions accepted an unknown convention")
	}
}
