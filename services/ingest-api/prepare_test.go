package ingestapi

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/usage"
)

var testNow = time.Date(2026, time.May, 1, 12, 0, 0, 0, time.UTC)

func testRules() rules {
	return rules{tenant: "acme", now: testNow, maxFuture: time.Hour}
}

func ts(t time.Time) *timestamppb.Timestamp {
	return timestamppb.New(t)
}

func tokens(kind eventv1.QuantityKind, n int64) *eventv1.Quantity {
	return &eventv1.Quantity{Kind: kind, Unit: eventv1.Unit_UNIT_TOKENS, Amount: n}
}

// validEvent is an event as a client sends it: no tenant, no source.
func validEvent(id string) *eventv1.UsageEvent {
	return &eventv1.UsageEvent{
		EventId:      id,
		StartTime:    ts(testNow.Add(-2 * time.Second)),
		EndTime:      ts(testNow.Add(-time.Second)),
		Granularity:  eventv1.Granularity_GRANULARITY_REQUEST,
		RequestCount: 1,
		Provider:     "openai",
		Model:        "gpt-4o",
		Operation:    "chat",
		Quantities: []*eventv1.Quantity{
			tokens(eventv1.QuantityKind_QUANTITY_KIND_INPUT, 1200),
			tokens(eventv1.QuantityKind_QUANTITY_KIND_OUTPUT, 300),
		},
		RunId:      "run-1",
		CustomerId: "cust-1",
	}
}

func events(n int) []*eventv1.UsageEvent {
	out := make([]*eventv1.UsageEvent, n)
	for i := range out {
		out[i] = validEvent("e-" + string(rune('0'+i)))
	}
	return out
}

func TestPrepareUsage(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(evs []*eventv1.UsageEvent)
		want   usage.FieldErrors
		bad    map[string]int
	}{{
		name:   "valid",
		mutate: func([]*eventv1.UsageEvent) {},
		bad:    map[string]int{},
	}, {
		name: "field and index of a nested problem",
		mutate: func(evs []*eventv1.UsageEvent) {
			evs[3].Quantities[0].Amount = -1
		},
		want: usage.FieldErrors{fe("events[3].quantities[0].amount", "must not be negative")},
		bad:  map[string]int{reasonInvalid: 1},
	}, {
		name: "every problem of every event",
		mutate: func(evs []*eventv1.UsageEvent) {
			evs[0].EndTime = nil
			evs[0].StartTime = nil
			evs[2].TenantId = "globex"
			evs[4].Quantities[1].Unit = eventv1.Unit_UNIT_REQUESTS
		},
		want: usage.FieldErrors{
			fe("events[0].end_time", "is required"),
			fe("events[2].tenant_id", `must be empty or "acme", the tenant of the API key`),
			fe("events[4].quantities[1].unit", "must be UNIT_TOKENS for QUANTITY_KIND_OUTPUT"),
		},
		bad: map[string]int{reasonInvalid: 2, reasonTenantMismatch: 1},
	}, {
		name:   "own tenant is fine",
		mutate: func(evs []*eventv1.UsageEvent) { evs[1].TenantId = "acme" },
		bad:    map[string]int{},
	}, {
		name: "duplicate ids name both indexes",
		mutate: func(evs []*eventv1.UsageEvent) {
			evs[4].EventId = evs[1].EventId
		},
		want: usage.FieldErrors{fe("events[4].event_id",
			`repeats events[1].event_id "e-1": each item of a batch needs its own id`)},
		bad: map[string]int{reasonDuplicateID: 1},
	}, {
		name: "identical events without ids",
		mutate: func(evs []*eventv1.UsageEvent) {
			evs[0].EventId = ""
			evs[3] = validEvent("")
		},
		want: usage.FieldErrors{fe("events[3].event_id", "")},
		bad:  map[string]int{reasonDuplicateID: 1},
	}, {
		name: "end time far ahead",
		mutate: func(evs []*eventv1.UsageEvent) {
			evs[1].StartTime = ts(testNow.Add(2 * time.Hour))
			evs[1].EndTime = ts(testNow.Add(2 * time.Hour))
		},
		want: usage.FieldErrors{fe("events[1].end_time",
			"must not be more than 1h0m0s ahead of the server's clock (2026-05-01T12:00:00Z)")},
		bad: map[string]int{reasonInvalid: 1},
	}, {
		name: "end time before 2000",
		mutate: func(evs []*eventv1.UsageEvent) {
			evs[1].StartTime = nil
			evs[1].EndTime = ts(time.Unix(1000, 0))
		},
		want: usage.FieldErrors{fe("events[1].end_time", "must not be before 2000-01-01T00:00:00Z")},
		bad:  map[string]int{reasonInvalid: 1},
	}, {
		name:   "nil event",
		mutate: func(evs []*eventv1.UsageEvent) { evs[2] = nil },
		want:   usage.FieldErrors{fe("events[2].event", "is required")},
		bad:    map[string]int{reasonInvalid: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := events(5)
			tt.mutate(evs)
			b := prepareUsage(testRules(), evs)
			if diff := cmp.Diff(tt.want, b.errs, ignoreLongReasons(tt.want)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.bad, b.bad); diff != "" {
				t.Errorf("bad items by reason (-want +got):\n%s", diff)
			}
		})
	}
}

// ignoreLongReasons compares only the field of wanted errors whose reason
// is left empty, for reasons too long to spell out in a table.
func fe(field, reason string) usage.FieldError {
	return usage.FieldError{Field: field, Reason: reason}
}

func ignoreLongReasons(want usage.FieldErrors) cmp.Option {
	empty := map[string]bool{}
	for _, e := range want {
		if e.Reason == "" {
			empty[e.Field] = true
		}
	}
	return cmp.Transformer("reason", func(e usage.FieldError) usage.FieldError {
		if empty[e.Field] {
			e.Reason = ""
		}
		return e
	})
}

func TestPrepareUsageDefaults(t *testing.T) {
	ev := validEvent("e-1")
	ev.Provider = "Bedrock"
	ev.Model = ""
	ev.ModelVersion = "us.anthropic.claude-sonnet-4-20250514-v1:0"
	if b := prepareUsage(testRules(), []*eventv1.UsageEvent{ev}); b.failed() {
		t.Fatalf("prepareUsage: %v", b.errs)
	}

	want := validEvent("e-1")
	want.TenantId = "acme"
	want.Source = &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_API, Name: "api"}
	want.Provider = "aws.bedrock"
	want.ModelVersion = "us.anthropic.claude-sonnet-4-20250514-v1:0"
	want.Model = "anthropic.claude-sonnet-4-20250514-v1:0"
	want.InferenceProfile = "cross-region"
	if diff := cmp.Diff(want, ev, protocmp.Transform()); diff != "" {
		t.Errorf("prepared event (-want +got):\n%s", diff)
	}
}

func TestPrepareUsageKeepsClientSource(t *testing.T) {
	ev := validEvent("e-1")
	ev.Source = &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_GATEWAY, Name: "litellm"}
	prepareUsage(testRules(), []*eventv1.UsageEvent{ev})
	want := &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_GATEWAY, Name: "litellm"}
	if diff := cmp.Diff(want, ev.GetSource(), protocmp.Transform()); diff != "" {
		t.Errorf("source (-want +got):\n%s", diff)
	}
}

func TestDerivedEventID(t *testing.T) {
	derive := func(mutate func(*eventv1.UsageEvent)) string {
		ev := validEvent("")
		mutate(ev)
		if b := prepareUsage(testRules(), []*eventv1.UsageEvent{ev}); b.failed() {
			t.Fatalf("prepareUsage: %v", b.errs)
		}
		return ev.GetEventId()
	}
	first := derive(func(*eventv1.UsageEvent) {})
	again := derive(func(*eventv1.UsageEvent) {})
	other := derive(func(ev *eventv1.UsageEvent) { ev.Quantities[0].Amount++ })

	if !strings.HasPrefix(first, "hash:") {
		t.Errorf("derived id = %q, want a hash: id", first)
	}
	if first != again {
		t.Errorf("the same event got ids %q and %q", first, again)
	}
	if first == other {
		t.Errorf("different events share the id %q", first)
	}
}

func validOutcome(id string) *eventv1.Outcome {
	return &eventv1.Outcome{
		OutcomeId:  id,
		Time:       ts(testNow.Add(-time.Minute)),
		Type:       "ticket_resolved",
		Value:      &eventv1.Money{CurrencyCode: "USD", Nanos: 12_500_000_000},
		SessionId:  "sess-1",
		CustomerId: "cust-1",
		Labels:     map[string]string{"queue": "billing"},
	}
}

func TestPrepareOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(o *eventv1.Outcome)
		want   usage.FieldErrors
	}{
		{"valid", func(*eventv1.Outcome) {}, nil},
		{"no value", func(o *eventv1.Outcome) { o.Value = nil }, nil},
		{"dotted type", func(o *eventv1.Outcome) { o.Type = "workflow.completed_v2" }, nil},
		{"own tenant", func(o *eventv1.Outcome) { o.TenantId = "acme" }, nil},
		{
			"missing id", func(o *eventv1.Outcome) { o.OutcomeId = "" },
			usage.FieldErrors{fe("outcomes[1].outcome_id", "is required")},
		},
		{
			"missing type", func(o *eventv1.Outcome) { o.Type = "" },
			usage.FieldErrors{fe("outcomes[1].type", "is required")},
		},
		{
			"bad type", func(o *eventv1.Outcome) { o.Type = "Ticket Resolved" },
			usage.FieldErrors{fe("outcomes[1].type",
				"must be lower-case letters, digits, '_' and '.', such as ticket_resolved")},
		},
		{
			"missing time", func(o *eventv1.Outcome) { o.Time = nil },
			usage.FieldErrors{fe("outcomes[1].time", "is required")},
		},
		{
			"invalid time", func(o *eventv1.Outcome) { o.Time = &timestamppb.Timestamp{Nanos: -1} },
			usage.FieldErrors{fe("outcomes[1].time", "is not a valid timestamp")},
		},
		{
			"future time", func(o *eventv1.Outcome) { o.Time = ts(testNow.AddDate(1, 0, 0)) },
			usage.FieldErrors{fe("outcomes[1].time", "must not be more than 1h0m0s ahead "+
				"of the server's clock (2026-05-01T12:00:00Z)")},
		},
		{
			"negative value", func(o *eventv1.Outcome) { o.Value.Nanos = -5 },
			usage.FieldErrors{fe("outcomes[1].value.nanos", "must not be negative")},
		},
		{
			"bad currency", func(o *eventv1.Outcome) { o.Value.CurrencyCode = "usd" },
			usage.FieldErrors{fe("outcomes[1].value.currency_code",
				"must be three upper-case letters (ISO 4217)")},
		},
		{
			"tenant mismatch", func(o *eventv1.Outcome) { o.TenantId = "globex" },
			usage.FieldErrors{fe("outcomes[1].tenant_id",
				`must be empty or "acme", the tenant of the API key`)},
		},
		{
			"duplicate id", func(o *eventv1.Outcome) { o.OutcomeId = "o-0" },
			usage.FieldErrors{fe("outcomes[1].outcome_id",
				`repeats outcomes[0].outcome_id "o-0": each item of a batch needs its own id`)},
		},
		{
			"control characters", func(o *eventv1.Outcome) { o.RunId = "a\x00b" },
			usage.FieldErrors{fe("outcomes[1].run_id", "must not contain control characters")},
		},
		{
			"empty label key", func(o *eventv1.Outcome) { o.Labels = map[string]string{"": "x"} },
			usage.FieldErrors{fe(`outcomes[1].labels[""]`, "key must not be empty")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outs := []*eventv1.Outcome{validOutcome("o-0"), validOutcome("o-1")}
			tt.mutate(outs[1])
			b := prepareOutcomes(testRules(), outs)
			if diff := cmp.Diff(tt.want, b.errs); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if got := outs[1].GetTenantId(); got != "acme" {
				t.Errorf("tenant_id after prepare = %q, want acme", got)
			}
		})
	}
}

func TestOutcomeKey(t *testing.T) {
	tests := []struct {
		name string
		o    *eventv1.Outcome
		want string
	}{
		{"run wins", &eventv1.Outcome{
			TenantId: "t", OutcomeId: "o", SessionId: "s", RunId: "r"}, "t/r"},
		{"then session", &eventv1.Outcome{TenantId: "t", OutcomeId: "o", SessionId: "s"}, "t/s"},
		{"then outcome", &eventv1.Outcome{TenantId: "t", OutcomeId: "o"}, "t/o"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(OutcomeKey(tt.o)); got != tt.want {
				t.Errorf("OutcomeKey = %q, want %q", got, tt.want)
			}
		})
	}
}
