package pricer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/internal/pricer"
	"github.com/costplane/costplane/services/pricing/internal/testenv"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

const (
	kIn  = eventv1.QuantityKind_QUANTITY_KIND_INPUT
	kCR  = eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ
	kCW  = eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M
	kOut = eventv1.QuantityKind_QUANTITY_KIND_OUTPUT
)

// fakeRates gives tenant "disc" 20 % off Anthropic.
type fakeRates struct{ err error }

func (f fakeRates) Get(tenant string) *pricebook.TenantRates {
	if tenant != "disc" {
		return nil
	}
	return &pricebook.TenantRates{Discounts: []pricebook.Discount{{
		ID: "rate-20", Scope: pricebook.Scope{Provider: "anthropic"}, PercentOffBP: 2000,
	}}}
}

func (f fakeRates) Check() error { return f.err }

var pricedAt = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func newPricer(t *testing.T, r pricer.Rates, reg *prometheus.Registry) *pricer.Pricer {
	t.Helper()
	return newPricerTo(t, "priced", r, reg)
}

func newPricerTo(t *testing.T, topic string, r pricer.Rates, reg *prometheus.Registry) *pricer.Pricer {
	t.Helper()
	m, err := pricer.NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	p, err := pricer.New(pricer.Config{
		Book: testenv.Book(t, nil), Rates: r, Topic: topic, Workers: 4,
		Log: log.Discard(), Metrics: m, Now: func() time.Time { return pricedAt },
	})
	if err != nil {
		t.Fatalf("pricer.New: %v", err)
	}
	return p
}

func sonnet(tenant, id string) *eventv1.UsageEvent {
	return testenv.Event(tenant, id, "anthropic", "claude-sonnet-4-5", "2026-11-01T10:00:00Z",
		testenv.Q{Kind: kIn, Amount: 1200}, testenv.Q{Kind: kCR, Amount: 18_000},
		testenv.Q{Kind: kCW, Amount: 2000}, testenv.Q{Kind: kOut, Amount: 450})
}

// TestHandle checks costs computed by hand, to the nano:
//
//	claude-sonnet-4-5 ($3 in, $0.30 cache read, $3.75 5m cache write, $15 out):
//	  1200 x 3 + 18000 x 0.30 + 2000 x 3.75 + 450 x 15 per million
//	  = 3,600,000 + 5,400,000 + 7,500,000 + 6,750,000 = 23,250,000 nanos
//	  20 % off: 2,880,000 + 4,320,000 + 6,000,000 + 5,400,000 = 18,600,000
//	gpt-4.1 ($2 in, $0.50 cache read, $8 out):
//	  900 x 2 + 4000 x 0.50 + 300 x 8 = 1,800,000 + 2,000,000 + 2,400,000 = 6,200,000
func TestHandle(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := newPricer(t, fakeRates{}, reg)

	unknown := testenv.Event("t", "ev-unknown", "acme", "acme-llm-9", "2026-11-01T10:00:00Z",
		testenv.Q{Kind: kIn, Amount: 1000})
	noTenant := sonnet("", "ev-no-tenant")
	recs := []*kgo.Record{
		testenv.UsageRecord(t, "usage", sonnet("t", "ev-list")),
		testenv.UsageRecord(t, "usage", sonnet("disc", "ev-disc")),
		testenv.UsageRecord(t, "usage", testenv.Event("t", "ev-41", "openai", "gpt-4.1",
			"2026-11-01T10:00:00Z", testenv.Q{Kind: kIn, Amount: 900},
			testenv.Q{Kind: kCR, Amount: 4000}, testenv.Q{Kind: kOut, Amount: 300})),
		testenv.UsageRecord(t, "usage", unknown),
		{Topic: "usage", Key: []byte("k"), Value: []byte("\xff\xff not protobuf"),
			Headers: testenv.UsageRecord(t, "usage", unknown).Headers},
		{Topic: "usage", Key: []byte("k"), Value: []byte{}},
		testenv.UsageRecord(t, "usage", noTenant),
	}

	out, rejects, err := p.Handle(context.Background(), recs)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}

	type priced struct {
		id, status, reason string
		list, eff          int64
		version            int64
	}
	var got []priced
	for i, rec := range out {
		pu := &eventv1.PricedUsage{}
		if err := kafka.UnmarshalProto(rec, pu); err != nil {
			t.Fatalf("output %d: %v", i, err)
		}
		if string(rec.Key) != string(recs[i].Key) || rec.Topic != "priced" {
			t.Errorf("output %d: topic %q key %q, want priced %q", i, rec.Topic, rec.Key, recs[i].Key)
		}
		if !pu.GetPricedTime().AsTime().Equal(pricedAt) || pu.GetPricedId() != pu.GetUsage().GetEventId() {
			t.Errorf("output %d: priced_id %q at %v, want the event id at %v",
				i, pu.GetPricedId(), pu.GetPricedTime().AsTime(), pricedAt)
		}
		reason := ""
		if pu.GetUnpricedReason() != "" {
			reason = "set"
		}
		got = append(got, priced{
			id: pu.GetPricedId(), status: pu.GetPricingStatus().String(), reason: reason,
			list: pu.GetListCost().GetNanos(), eff: pu.GetEffectiveCost().GetNanos(),
			version: pu.GetPriceVersion(),
		})
		if pu.GetPricingStatus() == eventv1.PricingStatus_PRICING_STATUS_UNPRICED &&
			(pu.GetListCost() != nil || pu.GetEffectiveCost() != nil || len(pu.GetCostLines()) > 0) {
			t.Errorf("unpriced %s carries a cost: %v", pu.GetPricedId(), pu)
		}
	}
	want := []priced{
		{"ev-list", "PRICING_STATUS_PRICED", "", 23_250_000, 23_250_000, 1},
		{"ev-disc", "PRICING_STATUS_PRICED", "", 23_250_000, 18_600_000, 1},
		{"ev-41", "PRICING_STATUS_PRICED", "", 6_200_000, 6_200_000, 1},
		{"ev-unknown", "PRICING_STATUS_UNPRICED", "set", 0, 0, 1},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(priced{})); diff != "" {
		t.Errorf("priced output (-want +got):\n%s", diff)
	}

	var reasons []string
	for _, r := range rejects {
		reasons = append(reasons, r.Reason)
	}
	wantPrefixes := []string{"value: decoding usage event", "value: decoding", "tenant_id: is required"}
	if len(reasons) != len(wantPrefixes) {
		t.Fatalf("rejects = %q, want %d", reasons, len(wantPrefixes))
	}
	for i, w := range wantPrefixes {
		if !strings.HasPrefix(reasons[i], w) {
			t.Errorf("reject %d reason %q, want prefix %q", i, reasons[i], w)
		}
	}

	for labels, want := range map[string]float64{
		"status=priced": 3, "status=unpriced": 1, "status=rejected": 3,
	} {
		k, v, _ := strings.Cut(labels, "=")
		if got := counter(t, reg, "costplane_pricing_events_total", map[string]string{k: v}); got != want {
			t.Errorf("events_total{%s} = %v, want %v", labels, got, want)
		}
	}
	cov := map[string]string{
		"provider": "acme", "model": "acme-llm-9", "status": "unpriced", "reason": "unknown_model",
	}
	if got := counter(t, reg, "costplane_pricing_coverage_events_total", cov); got != 1 {
		t.Errorf("coverage of the unknown model = %v, want 1", got)
	}
	cov = map[string]string{"provider": "anthropic", "model": "claude-sonnet-4-5", "status": "priced"}
	if got := counter(t, reg, "costplane_pricing_coverage_events_total", cov); got != 2 {
		t.Errorf("coverage of claude-sonnet-4-5 = %v, want 2", got)
	}
}

// TestHandleParallelKeepsOrder prices a batch large enough to be split
// over workers and checks that output follows input.
func TestHandleParallelKeepsOrder(t *testing.T) {
	p := newPricer(t, fakeRates{}, prometheus.NewRegistry())
	var recs []*kgo.Record
	for i := range 500 {
		recs = append(recs, testenv.UsageRecord(t, "usage", sonnet("t", fmt.Sprintf("ev-%03d", i))))
	}
	out, rejects, err := p.Handle(context.Background(), recs)
	if err != nil || len(rejects) != 0 || len(out) != len(recs) {
		t.Fatalf("Handle: %d out, %d rejects, %v; want %d out", len(out), len(rejects), err, len(recs))
	}
	for i, rec := range out {
		pu := &eventv1.PricedUsage{}
		if err := proto.Unmarshal(rec.Value, pu); err != nil {
			t.Fatalf("output %d: %v", i, err)
		}
		if want := fmt.Sprintf("ev-%03d", i); pu.GetPricedId() != want {
			t.Fatalf("output %d is %s, want %s", i, pu.GetPricedId(), want)
		}
	}
}

func TestHandleStaleRates(t *testing.T) {
	p := newPricer(t, fakeRates{err: errStale}, prometheus.NewRegistry())
	recs := []*kgo.Record{testenv.UsageRecord(t, "usage", sonnet("t", "ev-1"))}
	if _, _, err := p.Handle(context.Background(), recs); !errors.Is(err, errStale) {
		t.Errorf("Handle with stale rates: %v, want the staleness error", err)
	}
}

var errStale = errors.New("stale")

func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
