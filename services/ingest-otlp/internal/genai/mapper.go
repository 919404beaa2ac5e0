// Package genai maps OpenTelemetry spans that follow the GenAI semantic
// conventions, or the OpenInference conventions, to UsageEvents: LLM and
// embedding calls with their normalized token buckets, and the agent and
// tool steps that give the calls their place in a run.
package genai

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

// FlagsLabel is the label that lists the normalization flags of an event
// whose token counts could not be taken at face value.
const FlagsLabel = "costplane.flags"

// Rejection reasons, used as metric labels: a fixed, small set.
const (
	ReasonTraceID      = "bad_trace_id"
	ReasonSpanID       = "bad_span_id"
	ReasonParentSpanID = "bad_parent_span_id"
	ReasonTimestamps   = "bad_timestamps"
	ReasonTokenCount   = "bad_token_count"
	ReasonInvalidEvent = "invalid_event"
)

// Mapper turns export requests into events. It is safe for concurrent use.
type Mapper struct {
	cfg       Config
	spanRoles roleTable
	resRoles  roleTable
}

// NewMapper returns a mapper for cfg.
func NewMapper(cfg Config) (*Mapper, error) {
	if len(cfg.Labels) > MaxLabelRules {
		return nil, fmt.Errorf("at most %d label rules, got %d", MaxLabelRules, len(cfg.Labels))
	}
	return &Mapper{
		cfg:       cfg,
		spanRoles: newRoleTable(spanStringAttrs, true, cfg),
		resRoles:  newRoleTable(resourceStringAttrs, false, cfg),
	}, nil
}

// Result is the outcome of mapping one export request.
type Result struct {
	// Events are the steps found, one per GenAI span, in request order.
	Events []*eventv1.UsageEvent
	// Links are the spans without GenAI meaning, kept so that the steps
	// under them can be linked to the steps above them.
	Links []Link
	// Skipped counts the spans without GenAI meaning.
	Skipped int
	// Rejected lists the GenAI spans that were malformed.
	Rejected []Rejection
	// Flags counts the normalization flags raised, by flag.
	Flags map[usage.Flag]int
}

// Link is a span that is not a step, with hex ids.
type Link struct {
	TraceID, SpanID, ParentSpanID string
}

// Rejection says why a span was rejected.
type Rejection struct {
	// SpanID is the hex span id, or the span's position when its id is
	// itself the problem.
	SpanID string
	Reason string
	Detail string
}

func (r Rejection) String() string {
	return "span " + r.SpanID + ": " + r.Detail
}

// Reset empties r for reuse.
func (r *Result) Reset() {
	clear(r.Events)
	*r = Result{Events: r.Events[:0], Links: r.Links[:0], Rejected: r.Rejected[:0]}
}

// Map maps every span of t for tenant into out, which should be empty.
func (m *Mapper) Map(tenant string, t *otlp.Traces, out *Result) {
	var sf, rf facts
	pos := 0
	for i := range t.Resources {
		res := &t.Resources[i]
		rf.reset(len(m.cfg.Labels))
		rf.collect(m.resRoles, res.Attrs)
		for j := range res.Spans {
			sf.reset(len(m.cfg.Labels))
			sf.collect(m.spanRoles, res.Spans[j].Attrs)
			m.mapSpan(tenant, &res.Spans[j], &sf, &rf, pos, out)
			pos++
		}
	}
}

func (m *Mapper) mapSpan(tenant string, s *otlp.Span, f, rf *facts, pos int, out *Result) {
	kind, op := classify(f)
	if kind == eventv1.StepKind_STEP_KIND_UNSPECIFIED {
		out.Skipped++
		if l, ok := linkOf(s); ok {
			out.Links = append(out.Links, l)
		}
		return
	}
	if rej, bad := check(s, f, pos); bad {
		out.Rejected = append(out.Rejected, rej)
		return
	}

	ev, flags := m.event(tenant, s, f, rf, kind, op)
	if errs := usage.Validate(ev); len(errs) > 0 {
		out.Rejected = append(out.Rejected, Rejection{
			SpanID: ev.GetStepId(), Reason: ReasonInvalidEvent, Detail: errs.Error(),
		})
		return
	}
	for _, fl := range flags {
		if out.Flags == nil {
			out.Flags = map[usage.Flag]int{}
		}
		out.Flags[fl]++
	}
	out.Events = append(out.Events, ev)
}

// classify decides what step a span is, if any, and its operation name.
// The GenAI operation name decides first, then the OpenInference span
// kind, then the presence of token counts.
func classify(f *facts) (eventv1.StepKind, string) {
	switch op := f.str[strOperation]; op {
	case opInvokeAgent:
		return eventv1.StepKind_STEP_KIND_AGENT, op
	case opExecuteTool:
		return eventv1.StepKind_STEP_KIND_TOOL, op
	case opEmbeddings:
		return eventv1.StepKind_STEP_KIND_EMBEDDING, op
	case opChat, opTextCompletion, opGenerateContent:
		return eventv1.StepKind_STEP_KIND_LLM, op
	case "":
	default:
		// An operation this receiver does not know yet (create_agent
		// costs nothing) is a call only if it reports tokens.
		if f.hasTokens() {
			return eventv1.StepKind_STEP_KIND_LLM, op
		}
		return eventv1.StepKind_STEP_KIND_UNSPECIFIED, ""
	}
	return classifyOpenInference(f)
}

func classifyOpenInference(f *facts) (eventv1.StepKind, string) {
	switch f.str[strOIKind] {
	case oiKindLLM:
		return eventv1.StepKind_STEP_KIND_LLM, opChat
	case oiKindEmbedding:
		return eventv1.StepKind_STEP_KIND_EMBEDDING, opEmbeddings
	case oiKindRetriever:
		return eventv1.StepKind_STEP_KIND_RETRIEVAL, opRetrieval
	case oiKindTool:
		return eventv1.StepKind_STEP_KIND_TOOL, opExecuteTool
	case oiKindAgent:
		return eventv1.StepKind_STEP_KIND_AGENT, opInvokeAgent
	case "":
	default:
		// Chains, rerankers, guardrails: their token counts, when they
		// have any, repeat those of the LLM spans below them.
		return eventv1.StepKind_STEP_KIND_UNSPECIFIED, ""
	}
	if f.hasTokens() {
		// Older instrumentations report usage without an operation name.
		return eventv1.StepKind_STEP_KIND_LLM, ""
	}
	return eventv1.StepKind_STEP_KIND_UNSPECIFIED, ""
}

// check rejects GenAI spans that cannot become events.
func check(s *otlp.Span, f *facts, pos int) (Rejection, bool) {
	id := spanLabel(s, pos)
	switch {
	case !validID(s.TraceID, 16):
		return Rejection{id, ReasonTraceID, "trace_id must be 16 bytes, not all zero"}, true
	case !validID(s.SpanID, 8):
		return Rejection{id, ReasonSpanID, "span_id must be 8 bytes, not all zero"}, true
	case len(s.ParentSpanID) != 0 && len(s.ParentSpanID) != 8:
		return Rejection{id, ReasonParentSpanID, "parent_span_id must be empty or 8 bytes"}, true
	case s.EndNanos == 0:
		return Rejection{id, ReasonTimestamps, "end_time_unix_nano is required"}, true
	case s.StartNanos > s.EndNanos:
		return Rejection{id, ReasonTimestamps, "start_time_unix_nano is after end_time_unix_nano"},
			true
	case f.badToken != "":
		return Rejection{id, ReasonTokenCount, f.badToken +
			" must be a non-negative integer no larger than 10^15"}, true
	}
	return Rejection{}, false
}

// spanLabel names a span in a rejection: its hex id when it has a usable
// one, else its position in the request.
func spanLabel(s *otlp.Span, pos int) string {
	if len(s.SpanID) == 8 {
		return hex.EncodeToString(s.SpanID)
	}
	return fmt.Sprintf("#%d", pos)
}

func validID(b []byte, size int) bool {
	if len(b) != size {
		return false
	}
	for _, c := range b {
		if c != 0 {
			return true
		}
	}
	return false
}

func linkOf(s *otlp.Span) (Link, bool) {
	if !validID(s.TraceID, 16) || !validID(s.SpanID, 8) {
		return Link{}, false
	}
	return Link{
		TraceID:      hex.EncodeToString(s.TraceID),
		SpanID:       hex.EncodeToString(s.SpanID),
		ParentSpanID: parentHex(s.ParentSpanID),
	}, true
}

// parentHex returns the hex parent id, or "" for a root span, which OTLP
// marks with an empty or all-zero parent id.
func parentHex(b []byte) string {
	if !validID(b, 8) {
		return ""
	}
	return hex.EncodeToString(b)
}

// joinFlags renders flags for FlagsLabel.
func joinFlags(flags []usage.Flag) string {
	parts := make([]string, len(flags))
	for i, f := range flags {
		parts[i] = string(f)
	}
	return strings.Join(parts, ",")
}
