package usage

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Limits on the strings and maps of an event. They keep one bad source from
// bloating every store and topic downstream.
const (
	MaxIDLen         = 256
	MaxNameLen       = 512
	MaxLabels        = 64
	MaxLabelKeyLen   = 128
	MaxLabelValueLen = 1024
	MaxQuantities    = 32
)

// FieldError names one bad field of an event, as a path of proto field
// names such as "quantities[2].amount", and says what is wrong with it.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "field: reason".
func (e FieldError) Error() string {
	return e.Field + ": " + e.Reason
}

// FieldErrors is every problem found in one event.
type FieldErrors []FieldError

// Error joins the field errors with "; ".
func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Prefixed returns es with prefix and a dot before each field, for callers
// that validate events inside a batch ("events[3]").
func (es FieldErrors) Prefixed(prefix string) FieldErrors {
	out := make(FieldErrors, len(es))
	for i, e := range es {
		out[i] = FieldError{Field: prefix + "." + e.Field, Reason: e.Reason}
	}
	return out
}

// Validate checks the invariants every UsageEvent on Kafka keeps and returns
// one FieldError per violation, or nil when ev is valid.
func Validate(ev *eventv1.UsageEvent) FieldErrors {
	if ev == nil {
		return FieldErrors{{Field: "event", Reason: "is required"}}
	}
	v := &validator{}
	v.identity(ev)
	v.timing(ev)
	v.what(ev)
	v.quantities(ev.GetQuantities())
	v.who(ev)
	v.outcome(ev)
	return v.errs
}

type validator struct {
	errs FieldErrors
}

func (v *validator) add(field, reason string) {
	v.errs = append(v.errs, FieldError{Field: field, Reason: reason})
}

func (v *validator) identity(ev *eventv1.UsageEvent) {
	v.required("event_id", ev.GetEventId(), MaxIDLen)
	v.required("tenant_id", ev.GetTenantId(), MaxIDLen)
	if strings.Contains(ev.GetTenantId(), "/") {
		// The record key is tenant + "/" + ..., so a slash would make it
		// ambiguous.
		v.add("tenant_id", "must not contain '/'")
	}
	v.optional("dedup_key", ev.GetDedupKey(), MaxIDLen)

	src := ev.GetSource()
	switch {
	case src == nil:
		v.add("source", "is required")
	case src.GetKind() == eventv1.SourceKind_SOURCE_KIND_UNSPECIFIED:
		v.add("source.kind", "is required")
	case !known(eventv1.SourceKind_name, int32(src.GetKind())):
		v.add("source.kind", unknownValue(int32(src.GetKind())))
	}
	v.optional("source.name", src.GetName(), MaxNameLen)
}

func (v *validator) timing(ev *eventv1.UsageEvent) {
	start, end := ev.GetStartTime(), ev.GetEndTime()
	if end == nil {
		v.add("end_time", "is required")
	} else if err := end.CheckValid(); err != nil {
		v.add("end_time", "is not a valid timestamp")
	}
	if start != nil && start.CheckValid() != nil {
		v.add("start_time", "is not a valid timestamp")
	}
	if start != nil && end != nil && start.AsTime().After(end.AsTime()) {
		v.add("start_time", "must not be after end_time")
	}
	if !known(eventv1.Granularity_name, int32(ev.GetGranularity())) {
		v.add("granularity", unknownValue(int32(ev.GetGranularity())))
	}
	if ev.GetRequestCount() < 0 {
		v.add("request_count", "must not be negative")
	}
}

func (v *validator) what(ev *eventv1.UsageEvent) {
	v.optional("provider", ev.GetProvider(), MaxNameLen)
	v.optional("model", ev.GetModel(), MaxNameLen)
	v.optional("model_version", ev.GetModelVersion(), MaxNameLen)
	v.optional("operation", ev.GetOperation(), MaxNameLen)
	v.optional("region", ev.GetRegion(), MaxNameLen)
	v.optional("service_tier", ev.GetServiceTier(), MaxNameLen)
	v.optional("inference_profile", ev.GetInferenceProfile(), MaxNameLen)
	v.optional("context_tier", ev.GetContextTier(), MaxNameLen)
}

func (v *validator) quantities(qs []*eventv1.Quantity) {
	if len(qs) > MaxQuantities {
		v.add("quantities", fmt.Sprintf("must have at most %d entries", MaxQuantities))
		return
	}
	// Known kinds are small numbers, so a bit set finds repeats without a map.
	var seen uint64
	for i, q := range qs {
		v.quantity(i, q)
		k := q.GetKind()
		if k <= 0 || k >= 64 {
			continue
		}
		if seen&(1<<k) != 0 {
			v.add(quantityField(i, "kind"), "repeats an earlier kind: buckets must not overlap")
		}
		seen |= 1 << k
	}
}

func (v *validator) quantity(i int, q *eventv1.Quantity) {
	kind := q.GetKind()
	switch {
	case kind == eventv1.QuantityKind_QUANTITY_KIND_UNSPECIFIED:
		v.add(quantityField(i, "kind"), "is required")
	case !known(eventv1.QuantityKind_name, int32(kind)):
		v.add(quantityField(i, "kind"), unknownValue(int32(kind)))
	case q.GetUnit() != UnitOf(kind):
		v.add(quantityField(i, "unit"), fmt.Sprintf("must be %s for %s", UnitOf(kind), kind))
	}
	switch a := q.GetAmount(); {
	case a < 0:
		v.add(quantityField(i, "amount"), "must not be negative")
	case a > MaxAmount:
		v.add(quantityField(i, "amount"), fmt.Sprintf("must be at most %d", int64(MaxAmount)))
	}
}

func quantityField(i int, name string) string {
	return "quantities[" + strconv.Itoa(i) + "]." + name
}

func (v *validator) who(ev *eventv1.UsageEvent) {
	for _, f := range []struct{ name, value string }{
		{"account", ev.GetAccount()}, {"project", ev.GetProject()},
		{"api_key_id", ev.GetApiKeyId()}, {"session_id", ev.GetSessionId()},
		{"run_id", ev.GetRunId()}, {"step_id", ev.GetStepId()},
		{"parent_step_id", ev.GetParentStepId()}, {"customer_id", ev.GetCustomerId()},
		{"user_id", ev.GetUserId()}, {"trace_id", ev.GetTraceId()},
	} {
		v.optional(f.name, f.value, MaxIDLen)
	}
	for _, f := range []struct{ name, value string }{
		{"app", ev.GetApp()}, {"tool_name", ev.GetToolName()},
		{"environment", ev.GetEnvironment()}, {"agent.id", ev.GetAgent().GetId()},
		{"agent.name", ev.GetAgent().GetName()}, {"agent.version", ev.GetAgent().GetVersion()},
	} {
		v.optional(f.name, f.value, MaxNameLen)
	}
	if id := ev.GetStepId(); id != "" && id == ev.GetParentStepId() {
		v.add("parent_step_id", "must differ from step_id")
	}
	if !known(eventv1.StepKind_name, int32(ev.GetStepKind())) {
		v.add("step_kind", unknownValue(int32(ev.GetStepKind())))
	}
	v.labels(ev.GetLabels())
}

func (v *validator) labels(labels map[string]string) {
	if len(labels) > MaxLabels {
		v.add("labels", fmt.Sprintf("must have at most %d entries", MaxLabels))
		return
	}
	for k, val := range labels {
		field := "labels[" + strconv.Quote(k) + "]"
		if k == "" {
			v.add(field, "key must not be empty")
		}
		v.optional(field+".key", k, MaxLabelKeyLen)
		v.optional(field, val, MaxLabelValueLen)
	}
}

func (v *validator) outcome(ev *eventv1.UsageEvent) {
	if c := ev.GetReportedCost(); c != nil && !isCurrencyCode(c.GetCurrencyCode()) {
		v.add("reported_cost.currency_code", "must be three upper-case letters (ISO 4217)")
	}
	if !known(eventv1.CallStatus_name, int32(ev.GetStatus())) {
		v.add("status", unknownValue(int32(ev.GetStatus())))
	}
	if l := ev.GetLatency(); l != nil {
		if l.CheckValid() != nil {
			v.add("latency", "is not a valid duration")
		} else if l.AsDuration() < 0 {
			v.add("latency", "must not be negative")
		}
	}
}

func (v *validator) required(field, s string, maxLen int) {
	if s == "" {
		v.add(field, "is required")
		return
	}
	v.optional(field, s, maxLen)
}

func (v *validator) optional(field, s string, maxLen int) {
	if len(s) > maxLen {
		v.add(field, fmt.Sprintf("must be at most %d bytes", maxLen))
		return
	}
	// One pass finds control characters and whether UTF-8 needs checking:
	// this runs for every string of every event.
	control, ascii := false, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		control = control || c < 0x20 || c == 0x7f
		ascii = ascii && c < 0x80
	}
	switch {
	case !ascii && !utf8.ValidString(s):
		v.add(field, "must be valid UTF-8")
	case control:
		v.add(field, "must not contain control characters")
	}
}

func isCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func known(names map[int32]string, v int32) bool {
	_, ok := names[v]
	return ok
}

func unknownValue(v int32) string {
	return fmt.Sprintf("unknown value %d", v)
}

// UnitOf returns the unit a quantity of kind is counted in.
func UnitOf(kind eventv1.QuantityKind) eventv1.Unit {
	switch kind {
	case eventv1.QuantityKind_QUANTITY_KIND_REQUESTS:
		return eventv1.Unit_UNIT_REQUESTS
	case eventv1.QuantityKind_QUANTITY_KIND_WEB_SEARCHES:
		return eventv1.Unit_UNIT_CALLS
	case eventv1.QuantityKind_QUANTITY_KIND_IMAGES:
		return eventv1.Unit_UNIT_IMAGES
	case eventv1.QuantityKind_QUANTITY_KIND_AUDIO_SECONDS,
		eventv1.QuantityKind_QUANTITY_KIND_COMPUTE_SECONDS:
		return eventv1.Unit_UNIT_SECONDS
	case eventv1.QuantityKind_QUANTITY_KIND_CHARACTERS:
		return eventv1.Unit_UNIT_CHARACTERS
	case eventv1.QuantityKind_QUANTITY_KIND_UNSPECIFIED:
		return eventv1.Unit_UNIT_UNSPECIFIED
	default:
		return eventv1.Unit_UNIT_TOKENS
	}
}
