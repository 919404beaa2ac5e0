package usage

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

func validEvent() *eventv1.UsageEvent {
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &eventv1.UsageEvent{
		EventId:   "span:0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331",
		TenantId:  "acme",
		Source:    &eventv1.Source{Kind: eventv1.SourceKind_SOURCE_KIND_OTLP, Name: "otlp"},
		StartTime: timestamppb.New(end.Add(-2 * time.Second)),
		EndTime:   timestamppb.New(end),
		Provider:  ProviderOpenAI,
		Model:     "gpt-4o",
		Quantities: []*eventv1.Quantity{
			{Kind: kInput, Unit: eventv1.Unit_UNIT_TOKENS, Amount: 10},
			{Kind: kOutput, Unit: eventv1.Unit_UNIT_TOKENS, Amount: 5},
			{
				Kind:   eventv1.QuantityKind_QUANTITY_KIND_WEB_SEARCHES,
				Unit:   eventv1.Unit_UNIT_CALLS,
				Amount: 1,
			},
		},
		StepKind: eventv1.StepKind_STEP_KIND_LLM,
		Labels:   map[string]string{"team": "support"},
		Latency:  durationpb.New(2 * time.Second),
		Status:   eventv1.CallStatus_CALL_STATUS_OK,
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(ev *eventv1.UsageEvent)
		want   FieldErrors
	}{{
		name:   "valid",
		mutate: func(*eventv1.UsageEvent) {},
	}, {
		name: "negative amount names the index",
		mutate: func(ev *eventv1.UsageEvent) {
			ev.Quantities[2].Amount = -1
		},
		want: FieldErrors{{"quantities[2].amount", "must not be negative"}},
	}, {
		name: "overlapping buckets",
		mutate: func(ev *eventv1.UsageEvent) {
			ev.Quantities[1].Kind = kInput
		},
		want: FieldErrors{{
			"quantities[1].kind", "repeats an earlier kind: buckets must not overlap",
		}},
	}, {
		name: "wrong unit",
		mutate: func(ev *eventv1.UsageEvent) {
			ev.Quantities[0].Unit = eventv1.Unit_UNIT_SECONDS
		},
		want: FieldErrors{{"quantities[0].unit", "must be UNIT_TOKENS for QUANTITY_KIND_INPUT"}},
	}, {
		name: "missing identity",
		mutate: func(ev *eventv1.UsageEvent) {
			ev.EventId, ev.TenantId, ev.Source = "", "", nil
		},
		want: FieldErrors{
			{"event_id", "is required"}, {"tenant_id", "is required"}, {"source", "is required"},
		},
	}, {
		name:   "slash in tenant",
		mutate: func(ev *eventv1.UsageEvent) { ev.TenantId = "a/b" },
		want:   FieldErrors{{"tenant_id", "must not contain '/'"}},
	}, {
		name: "time runs backwards",
		mutate: func(ev *eventv1.UsageEvent) {
			ev.StartTime = timestamppb.New(ev.EndTime.AsTime().Add(time.Second))
		},
		want: FieldErrors{{"start_time", "must not be after end_time"}},
	}, {
		name:   "missing end time",
		mutate: func(ev *eventv1.UsageEvent) { ev.EndTime = nil },
		want:   FieldErrors{{"end_time", "is required"}},
	}, {
		name:   "unknown enum",
		mutate: func(ev *eventv1.UsageEvent) { ev.StepKind = 99 },
		want:   FieldErrors{{"step_kind", "unknown value 99"}},
	}, {
		name:   "step is its own parent",
		mutate: func(ev *eventv1.UsageEvent) { ev.StepId, ev.ParentStepId = "a", "a" },
		want:   FieldErrors{{"parent_step_id", "must differ from step_id"}},
	}, {
		name:   "long id",
		mutate: func(ev *eventv1.UsageEvent) { ev.SessionId = strings.Repeat("s", MaxIDLen+1) },
		want:   FieldErrors{{"session_id", "must be at most 256 bytes"}},
	}, {
		name:   "control characters",
		mutate: func(ev *eventv1.UsageEvent) { ev.Agent = &eventv1.Agent{Name: "a\nb"} },
		want:   FieldErrors{{"agent.name", "must not contain control characters"}},
	}, {
		name:   "bad label",
		mutate: func(ev *eventv1.UsageEvent) { ev.Labels = map[string]string{"": "x"} },
		want:   FieldErrors{{`labels[""]`, "key must not be empty"}},
	}, {
		name: "bad currency",
		mutate: func(ev *eventv1.UsageEvent) {
			ev.ReportedCost = &eventv1.Money{CurrencyCode: "usd", Nanos: 1}
		},
		want: FieldErrors{{
			"reported_cost.currency_code", "must be three upper-case letters (ISO 4217)",
		}},
	}, {
		name:   "negative latency",
		mutate: func(ev *eventv1.UsageEvent) { ev.Latency = durationpb.New(-time.Second) },
		want:   FieldErrors{{"latency", "must not be negative"}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := validEvent()
			tc.mutate(ev)
			if diff := cmp.Diff(tc.want, Validate(ev)); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFieldErrorsPrefixed(t *testing.T) {
	es := FieldErrors{{"quantities[0].amount", "must not be negative"}}
	got := es.Prefixed("events[3]").Error()
	want := "events[3].quantities[0].amount: must not be negative"
	if got != want {
		t.Errorf("Prefixed().Error() = %q, want %q", got, want)
	}
}

// FuzzValidate feeds arbitrary bytes decoded as an event: Validate must
// never panic, and must accept exactly the events whose fields it checks.
func FuzzValidate(f *testing.F) {
	seed, err := proto.Marshal(validEvent())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0x8a, 0x01, 0x03, 'a', '/', 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev := &eventv1.UsageEvent{}
		if proto.Unmarshal(b, ev) != nil {
			return
		}
		errs := Validate(ev)
		for _, e := range errs {
			if e.Field == "" || e.Reason == "" {
				t.Fatalf("field error without field or reason: %+v", e)
			}
		}
		if len(errs) == 0 {
			assertValid(t, ev)
		}
	})
}

// assertValid re-checks, independently of Validate, the properties that
// downstream consumers rely on.
func assertValid(t *testing.T, ev *eventv1.UsageEvent) {
	t.Helper()
	if ev.GetEventId() == "" || ev.GetTenantId() == "" {
		t.Fatal("accepted an event without id or tenant")
	}
	if strings.Contains(ev.GetTenantId(), "/") {
		t.Fatal("accepted a tenant with a slash")
	}
	kinds := map[eventv1.QuantityKind]bool{}
	for _, q := range ev.GetQuantities() {
		if q.GetAmount() < 0 || kinds[q.GetKind()] {
			t.Fatalf("accepted a negative or repeated quantity: %v", q)
		}
		kinds[q.GetKind()] = true
	}
}
