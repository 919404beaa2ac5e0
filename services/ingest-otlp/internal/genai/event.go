package genai

import (
	"encoding/hex"
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/usage"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/ingest-otlp/internal/otlp"
)

// SourceName is the source name of every event this receiver makes.
const SourceName = "otlp"

// eventBlock is an event with the messages it points to, allocated in one
// piece: the receiver makes hundreds of thousands of events a second.
type eventBlock struct {
	ev         eventv1.UsageEvent
	start, end timestamppb.Timestamp
	latency    durationpb.Duration
	qs         [usage.NumTokenBuckets]eventv1.Quantity
	qptrs      [usage.NumTokenBuckets]*eventv1.Quantity
}

// source is shared by every event: encoding only reads it.
var source = &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_OTLP, Name: SourceName}

// event builds the event of a checked GenAI span.
func (m *Mapper) event(tenant string, s *otlp.Span, f, rf *facts, kind eventv1.StepKind,
	op string,
) (*eventv1.UsageEvent, []usage.Flag) {
	b := &eventBlock{}
	ids := spanIDs(s)
	setTimestamp(&b.start, s.StartNanos)
	setTimestamp(&b.end, s.EndNanos)
	// check ensured start <= end; a span longer than int64 nanoseconds
	// becomes negative here and is rejected by validation.
	d := int64(s.EndNanos - s.StartNanos)
	b.latency.Seconds, b.latency.Nanos = d/1e9, int32(d%1e9)
	ev := &b.ev
	ev.EventId, ev.TenantId, ev.Source = ids.event, tenant, source
	ev.StartTime, ev.EndTime, ev.Latency = &b.start, &b.end, &b.latency
	ev.Granularity = eventv1.Granularity_GRANULARITY_REQUEST
	ev.Operation = op
	ev.App, ev.Environment = rf.str[strApp], firstOf(rf.str[strEnv], rf.str[strEnvOld])
	ev.SessionId = strings.Clone(f.session)
	ev.RunId, ev.TraceId, ev.StepId, ev.ParentStepId = ids.trace, ids.trace, ids.span, ids.parent
	ev.StepKind = kind
	ev.CustomerId, ev.UserId = firstOf(f.customer, rf.customer), firstOf(f.user, rf.user)
	ev.Status = status(s, f)
	m.setAgent(ev, s, f)
	if kind == eventv1.StepKind_STEP_KIND_TOOL {
		ev.ToolName = firstOf(f.str[strToolName], f.str[strOITool],
			strings.TrimPrefix(s.Name, opExecuteTool+" "))
	}

	var flags []usage.Flag
	if kind == eventv1.StepKind_STEP_KIND_LLM || kind == eventv1.StepKind_STEP_KIND_EMBEDDING {
		flags = m.setCall(b, f)
	}
	m.setLabels(ev, f, rf, flags)
	return ev, flags
}

// stepIDs are the hex ids of a span's event, as substrings of one string.
type stepIDs struct {
	event, trace, span, parent string
}

// spanIDs renders the event id ("span:<trace>:<span>") and the parent id
// into one allocation; the trace and span ids are substrings of the event
// id. The ids are checked already.
func spanIDs(s *otlp.Span) stepIDs {
	var arr [64 + 16]byte
	buf := usage.AppendSpanEventID(arr[:0], s.TraceID, s.SpanID)
	eventEnd := len(buf)
	hasParent := validID(s.ParentSpanID, 8)
	if hasParent {
		buf = hex.AppendEncode(buf, s.ParentSpanID)
	}
	all := string(buf)
	ids := stepIDs{
		event: all[:eventEnd],
		trace: all[len("span:") : len("span:")+32],
		span:  all[eventEnd-16 : eventEnd],
	}
	if hasParent {
		ids.parent = all[eventEnd:]
	}
	return ids
}

// setCall fills what a model call has: provider, model, tier, the dedup
// key and the token buckets.
func (m *Mapper) setCall(b *eventBlock, f *facts) []usage.Flag {
	ev := &b.ev
	ev.RequestCount = 1
	ev.Provider = usage.CanonicalProvider(firstOf(f.str[strProvider], f.str[strSystem],
		f.str[strOIProvider], f.str[strOISystem]))
	ev.ModelVersion = firstOf(f.str[strResponseModel], f.str[strRequestModel], f.str[strOIModel])
	ev.Model, ev.InferenceProfile = usage.CanonicalModel(ev.Provider, ev.ModelVersion)
	ev.ServiceTier = serviceTier(firstOf(f.str[strTierResponse], f.str[strTierRequest]))
	ev.DedupKey = usage.DedupKey(ev.Provider, f.str[strResponseID])

	tokens, total := f.tokens()
	conv, ok := m.cfg.Conventions[ev.Provider]
	if !ok {
		conv = usage.ConventionOTel
	}
	buckets, n, flags := tokens.Buckets(tokens.InferConvention(total, conv))
	for i, bk := range buckets[:n] {
		b.qs[i] = eventv1.Quantity{Kind: bk.Kind, Unit: eventv1.Unit_UNIT_TOKENS, Amount: bk.Amount}
		b.qptrs[i] = &b.qs[i]
	}
	ev.Quantities = b.qptrs[:n:n]
	return flags
}

// setAgent names the agent of an invoke_agent span, or the agent a span
// declares itself to run under. Strings are copied: the ingest trace join
// keeps agents after the request body is gone.
func (m *Mapper) setAgent(ev *eventv1.UsageEvent, s *otlp.Span, f *facts) {
	id, version := f.str[strAgentID], f.str[strAgentVersion]
	name := firstOf(f.str[strAgentName], f.str[strOIAgent])
	if ev.StepKind == eventv1.StepKind_STEP_KIND_AGENT && name == "" && id == "" {
		name = strings.TrimPrefix(s.Name, opInvokeAgent+" ")
	}
	if id == "" && name == "" && version == "" {
		return
	}
	ev.Agent = &eventv1.Agent{
		Id: strings.Clone(id), Name: strings.Clone(name), Version: strings.Clone(version),
	}
}

func (m *Mapper) setLabels(ev *eventv1.UsageEvent, f, rf *facts, flags []usage.Flag) {
	for i, r := range m.cfg.Labels {
		if v := firstOf(f.labels[i], rf.labels[i]); v != "" {
			if ev.Labels == nil {
				ev.Labels = map[string]string{}
			}
			ev.Labels[r.Label] = v
		}
	}
	if len(flags) > 0 {
		if ev.Labels == nil {
			ev.Labels = map[string]string{}
		}
		ev.Labels[FlagsLabel] = joinFlags(flags)
	}
}

// serviceTier maps OpenAI's tier names to the product's: "default" is the
// standard tier, and "auto" says nothing about the tier used.
func serviceTier(t string) string {
	switch t = strings.ToLower(t); t {
	case "default":
		return "standard"
	case "auto":
		return ""
	default:
		return t
	}
}

func status(s *otlp.Span, f *facts) eventv1.CallStatus {
	const otlpStatusError = 2
	if s.StatusCode == otlpStatusError || f.str[strErrorType] != "" {
		return eventv1.CallStatus_CALL_STATUS_ERROR
	}
	return eventv1.CallStatus_CALL_STATUS_OK
}

func setTimestamp(ts *timestamppb.Timestamp, nanos uint64) {
	ts.Seconds, ts.Nanos = int64(nanos/1_000_000_000), int32(nanos%1_000_000_000)
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
