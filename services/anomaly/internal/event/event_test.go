package event

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/kafka"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

func record(t *testing.T, p *eventv1.PricedUsage) *kgo.Record {
	t.Helper()
	rec, err := kafka.ProtoRecord("priced", nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func valid() *eventv1.PricedUsage {
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &eventv1.PricedUsage{
		PricedId: "p1",
		Usage: &eventv1.UsageEvent{EventId: "e1", TenantId: "t1", TraceId: "trace",
			StepKind: eventv1.StepKind_STEP_KIND_AGENT, Agent: &eventv1.Agent{Id: "a-7"},
			EndTime: timestamppb.New(end),
			Quantities: []*eventv1.Quantity{
				{Kind: eventv1.QuantityKind_QUANTITY_KIND_INPUT, Amount: 100},
				{Kind: eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ, Amount: 50},
				{Kind: eventv1.QuantityKind_QUANTITY_KIND_OUTPUT, Amount: 70},
			}},
		EffectiveCost: &eventv1.Money{CurrencyCode: "EUR", Nanos: 42},
	}
}

func TestDecode(t *testing.T) {
	ev, err := Decode(record(t, valid()), nil)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	// The run falls back to the trace, the agent to its id, and the
	// prompt counts cached input too: a retry resends the same prompt.
	if ev.Run != "trace" || ev.Agent != "a-7" || !ev.Root || ev.Prompt != 150 ||
		ev.Cost != 42 || ev.Currency != "EUR" || ev.ID != "p1" {
		t.Errorf("decoded %+v", ev)
	}
}

func TestDecodeRejectsWithTheFieldNamed(t *testing.T) {
	tests := []struct {
		name string
		rec  func() *kgo.Record
		want string
	}{
		{"no tenant", func() *kgo.Record {
			p := valid()
			p.Usage.TenantId = ""
			return record(t, p)
		}, "usage.tenant_id"},
		{"no id", func() *kgo.Record {
			p := valid()
			p.PricedId, p.Usage.EventId = "", ""
			return record(t, p)
		}, "priced_id"},
		{"bad currency", func() *kgo.Record {
			p := valid()
			p.EffectiveCost.CurrencyCode = "euro"
			return record(t, p)
		}, "effective_cost.currency_code"},
		{"another message", func() *kgo.Record {
			rec, err := kafka.ProtoRecord("priced", nil, &eventv1.UsageEvent{TenantId: "t"})
			if err != nil {
				t.Fatal(err)
			}
			return rec
		}, "content type"},
		{"not protobuf", func() *kgo.Record {
			rec := record(t, valid())
			rec.Value = []byte{0xff, 0xff, 0xff}
			return rec
		}, "decoding"},
	}
	for _, tt := range tests {
		_, err := Decode(tt.rec(), nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want ErrInvalid naming %q", tt.name, err, tt.want)
		}
	}
}
