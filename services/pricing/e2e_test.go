package pricing_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	pricingv1 "github.com/costplane/costplane/proto/gen/go/costplane/pricing/v1"
	"github.com/costplane/costplane/services/pricing"
	"github.com/costplane/costplane/services/pricing/internal/testenv"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

const (
	kIn  = eventv1.QuantityKind_QUANTITY_KIND_INPUT
	kCR  = eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ
	kCW  = eventv1.QuantityKind_QUANTITY_KIND_CACHE_WRITE_5M
	kOut = eventv1.QuantityKind_QUANTITY_KIND_OUTPUT

	statusPriced   = eventv1.PricingStatus_PRICING_STATUS_PRICED
	statusUnpriced = eventv1.PricingStatus_PRICING_STATUS_UNPRICED
)

// stack is a pricing service running on a test database and broker.
type stack struct {
	svc  *pricing.Service
	stop func()
}

// testConfig is the service's config with names of its own and short
// delays, so that a test runs in seconds.
func testConfig() pricing.Config {
	cfg := pricing.DefaultConfig()
	cfg.Group = testenv.Unique("pricing")
	cfg.LedgerGroup = testenv.Unique("pricing-ledger")
	cfg.TransactionalID = testenv.Unique("pricing-txn")
	cfg.RepriceTransactionalID = testenv.Unique("reprice-txn")
	cfg.RatesPoll = 200 * time.Millisecond
	cfg.RepricePoll = 100 * time.Millisecond
	cfg.RatesMaxStale = time.Second
	cfg.RepriceSettle = time.Second
	cfg.RepriceCatchUp = 30 * time.Second
	return cfg
}

func newService(t *testing.T, cfg pricing.Config, db *pgxpool.Pool, kcfg kafka.Config,
	book *pricebook.Book) *pricing.Service {
	t.Helper()
	svc, err := pricing.New(cfg, pricing.Deps{
		Logger: log.Discard(), Pool: db, Kafka: kcfg, Book: book,
		Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatalf("pricing.New: %v", err)
	}
	return svc
}

func start(t *testing.T, svc *pricing.Service) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return &stack{svc: svc, stop: stop}
}

// as is a context carrying an admin and read principal of tenant.
func as(tenant string) context.Context {
	return auth.NewContext(context.Background(), auth.Principal{
		TenantID: tenant, KeyID: "test", Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeAdmin},
	})
}

// decodePriced returns the priced records by priced_id, and each id's
// record key.
func decodePriced(t *testing.T, recs []*kgo.Record) (
	map[string][]*eventv1.PricedUsage, map[string]string) {
	t.Helper()
	out, keys := map[string][]*eventv1.PricedUsage{}, map[string]string{}
	for _, r := range recs {
		pu := &eventv1.PricedUsage{}
		if err := kafka.UnmarshalProto(r, pu); err != nil {
			t.Fatalf("priced record at %d/%d: %v", r.Partition, r.Offset, err)
		}
		out[pu.GetPricedId()] = append(out[pu.GetPricedId()], pu)
		keys[pu.GetPricedId()] = string(r.Key)
	}
	return out, keys
}

// TestEndToEnd runs usage through the pricing consumer into the priced
// topic and the ledger, then changes the catalog (a model becomes known)
// and a tenant rate (20 % off Anthropic) and reprices. Every changed
// event gets exactly one correction with the hand-computed delta; a
// second reprice publishes nothing. It runs on kfake and, when
// KAFKA_BROKERS is set, on the real broker; it needs DATABASE_URL.
//
// Costs, in nanos (see internal/pricer's TestHandle for the arithmetic):
//
//	claude-sonnet-4-5, 1200 in + 18000 cache read + 2000 5m write + 450 out:
//	  23,250,000 list; 20 % off 18,600,000; delta -4,650,000
//	gpt-4.1, 900 in + 4000 cache read + 300 out: 6,200,000, unchanged
//	acme-llm-9 ($1 in, $2 out once the catalog has it), 1000 in + 500 out:
//	  unpriced, then 1,000,000 + 1,000,000 = 2,000,000
func TestEndToEnd(t *testing.T) {
	testenv.Clusters(t, func(t *testing.T, brokers []string) {
		db := testenv.DB(t)
		kcfg := testenv.KafkaConfig(brokers)
		cfg := testConfig()
		testenv.EnsureTopics(t, kcfg)
		first := start(t, newService(t, cfg, db, kcfg, testenv.Book(t, nil)))

		sonnet := func(id, run string) *eventv1.UsageEvent {
			ev := testenv.Event("t-e2e", id, "anthropic", "claude-sonnet-4-5", "2026-11-01T10:00:00Z",
				testenv.Q{Kind: kIn, Amount: 1200}, testenv.Q{Kind: kCR, Amount: 18_000},
				testenv.Q{Kind: kCW, Amount: 2000}, testenv.Q{Kind: kOut, Amount: 450})
			ev.RunId = run
			return ev
		}
		events := []*eventv1.UsageEvent{
			sonnet("ev-sonnet-1", "run-1"),
			sonnet("ev-sonnet-2", "run-2"),
			testenv.Event("t-e2e", "ev-gpt41", "openai", "gpt-4.1", "2026-11-01T11:00:00Z",
				testenv.Q{Kind: kIn, Amount: 900}, testenv.Q{Kind: kCR, Amount: 4000},
				testenv.Q{Kind: kOut, Amount: 300}),
			testenv.Event("t-e2e", "ev-acme", "acme", "acme-llm-9", "2026-11-01T12:00:00Z",
				testenv.Q{Kind: kIn, Amount: 1000}, testenv.Q{Kind: kOut, Amount: 500}),
			// Another tenant's event in the same range is not repriced.
			testenv.Event("t-other", "ev-other", "anthropic", "claude-sonnet-4-5",
				"2026-11-01T10:00:00Z", testenv.Q{Kind: kIn, Amount: 1200}),
			// Outside the reprice range.
			testenv.Event("t-e2e", "ev-later", "acme", "acme-llm-9", "2026-11-05T00:00:00Z",
				testenv.Q{Kind: kIn, Amount: 1}),
		}
		var recs []*kgo.Record
		keys := map[string]string{}
		for _, ev := range events {
			r := testenv.UsageRecord(t, kcfg.Topics.Usage, ev)
			recs = append(recs, r)
			keys[ev.GetEventId()] = string(r.Key)
		}
		bad := &kgo.Record{Topic: kcfg.Topics.Usage, Key: []byte("t-e2e/bad"), Value: []byte("garbage"),
			Headers: recs[0].Headers}
		testenv.Produce(t, brokers, append(recs, bad)...)

		priced, _ := decodePriced(t, testenv.ReadAtLeast(t, brokers, kcfg.Topics.UsagePriced,
			len(events), time.Second))
		if got, want := testenv.SortedKeys(priced), []string{"ev-acme", "ev-gpt41", "ev-later",
			"ev-other", "ev-sonnet-1", "ev-sonnet-2"}; !slices.Equal(got, want) {
			t.Fatalf("priced ids = %v, want %v", got, want)
		}
		for id, pus := range priced {
			if len(pus) != 1 {
				t.Errorf("%s priced %d times, want once", id, len(pus))
			}
		}
		checkCost(t, priced["ev-sonnet-1"][0], statusPriced, 23_250_000, 23_250_000)
		checkCost(t, priced["ev-gpt41"][0], statusPriced, 6_200_000, 6_200_000)
		acme := priced["ev-acme"][0]
		if acme.GetPricingStatus() != statusUnpriced || acme.GetUnpricedReason() == "" ||
			acme.GetEffectiveCost() != nil {
			t.Errorf("unknown model priced as %v (%q, %v), want UNPRICED with a reason and no cost",
				acme.GetPricingStatus(), acme.GetUnpricedReason(), acme.GetEffectiveCost())
		}

		dlq := testenv.ReadAtLeast(t, brokers, kcfg.Topics.UsageDLQ, 1, 0)
		if reason, _ := kafka.Header(dlq[0], kafka.HeaderDLQReason); string(dlq[0].Value) != "garbage" ||
			reason == "" {
			t.Errorf("dead letter %q with reason %q, want the garbage record with a reason",
				dlq[0].Value, reason)
		}
		waitLedger(t, db, len(events))
		first.stop()

		// A release with Acme in the catalog, and a negotiated discount.
		svc := newService(t, cfg, db, kcfg, testenv.Book(t, map[string]string{"acme.yaml": testenv.AcmeCatalog}))
		_, err := svc.CreateRate(as("t-e2e"), &pricingv1.CreateRateRequest{Rate: &pricingv1.Rate{
			Kind:     pricingv1.RateKind_RATE_KIND_DISCOUNT,
			Scope:    &pricingv1.RateScope{Provider: "anthropic"},
			Discount: &pricingv1.Discount{PercentOffBasisPoints: 2000},
		}})
		if err != nil {
			t.Fatalf("CreateRate: %v", err)
		}
		start(t, svc)

		rp := reprice(t, svc, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
		want := &pricingv1.Reprice{
			State: pricingv1.RepriceState_REPRICE_STATE_SUCCEEDED, ScannedCount: 4,
			CorrectedCount: 3, NewlyPricedCount: 1, UnpricedCount: 0,
			ListCostDelta:      &eventv1.Money{CurrencyCode: "USD", Nanos: 2_000_000},
			EffectiveCostDelta: &eventv1.Money{CurrencyCode: "USD", Nanos: -4_650_000*2 + 2_000_000},
		}
		checkReprice(t, rp, want)

		all, gotKeys := decodePriced(t, testenv.ReadAtLeast(t, brokers, kcfg.Topics.UsagePriced,
			len(events)+3, 2*time.Second))
		corrections := map[string]*eventv1.PricedUsage{}
		for id, pus := range all {
			if pus[0].GetCorrectsEventId() == "" {
				continue
			}
			if len(pus) != 1 {
				t.Errorf("correction %s published %d times, want once", id, len(pus))
			}
			corrections[id] = pus[0]
		}
		if got, want := testenv.SortedKeys(corrections),
			[]string{"ev-acme@v2", "ev-sonnet-1@v2", "ev-sonnet-2@v2"}; !slices.Equal(got, want) {
			t.Fatalf("corrections = %v, want %v", got, want)
		}
		for _, id := range []string{"ev-sonnet-1", "ev-sonnet-2"} {
			c := corrections[id+"@v2"]
			checkCost(t, c, statusPriced, 0, -4_650_000)
			checkCorrection(t, c, id)
			if gotKeys[id+"@v2"] != keys[id] {
				t.Errorf("%s@v2 has key %q, want the usage key %q", id, gotKeys[id+"@v2"], keys[id])
			}
			for _, l := range c.GetCostLines() {
				if l.GetAmount() != 0 || l.GetListCost().GetNanos() != 0 {
					t.Errorf("%s line %s moves amount %d, list %d; want 0 and 0",
						id, l.GetKind(), l.GetAmount(), l.GetListCost().GetNanos())
				}
			}
		}
		c := corrections["ev-acme@v2"]
		checkCost(t, c, statusPriced, 2_000_000, 2_000_000)
		checkCorrection(t, c, "ev-acme")
		if gotKeys["ev-acme@v2"] != keys["ev-acme"] {
			t.Errorf("ev-acme@v2 has key %q, want %q", gotKeys["ev-acme@v2"], keys["ev-acme"])
		}
		checkLedger(t, db, "ev-sonnet-1", 2, 18_600_000)
		checkLedger(t, db, "ev-acme", 2, 2_000_000)
		checkLedger(t, db, "ev-gpt41", 1, 6_200_000)

		// Again: nothing changed, so nothing is published.
		again := reprice(t, svc, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
		want.CorrectedCount, want.NewlyPricedCount = 0, 0
		want.ListCostDelta, want.EffectiveCostDelta = nil, nil
		checkReprice(t, again, want)
		if n := len(testenv.ReadAtLeast(t, brokers, kcfg.Topics.UsagePriced, len(events)+3,
			2*time.Second)); n != len(events)+3 {
			t.Errorf("priced topic holds %d records after a second reprice, want %d", n, len(events)+3)
		}
	})
}

func reprice(t *testing.T, svc *pricing.Service, from, to string) *pricingv1.Reprice {
	t.Helper()
	ts := func(s string) *timestamppb.Timestamp {
		v, _ := time.Parse(time.RFC3339, s)
		return timestamppb.New(v)
	}
	started, err := svc.StartReprice(as("t-e2e"), &pricingv1.StartRepriceRequest{
		StartTime: ts(from), EndTime: ts(to), Reason: "test: new catalog and a discount",
	})
	if err != nil {
		t.Fatalf("StartReprice: %v", err)
	}
	var rp *pricingv1.Reprice
	testenv.Eventually(t, 60*time.Second, func() (bool, error) {
		got, err := svc.GetReprice(as("t-e2e"), &pricingv1.GetRepriceRequest{
			RepriceId: started.GetReprice().GetRepriceId(),
		})
		if err != nil {
			return false, err
		}
		rp = got.GetReprice()
		done := rp.GetState() == pricingv1.RepriceState_REPRICE_STATE_SUCCEEDED ||
			rp.GetState() == pricingv1.RepriceState_REPRICE_STATE_FAILED
		return done, fmt.Errorf("state %s", rp.GetState())
	})
	return rp
}

func checkReprice(t *testing.T, got, want *pricingv1.Reprice) {
	t.Helper()
	g := &pricingv1.Reprice{
		State: got.GetState(), ScannedCount: got.GetScannedCount(),
		CorrectedCount: got.GetCorrectedCount(), NewlyPricedCount: got.GetNewlyPricedCount(),
		UnpricedCount: got.GetUnpricedCount(), ListCostDelta: got.GetListCostDelta(),
		EffectiveCostDelta: got.GetEffectiveCostDelta(), Error: got.GetError(),
	}
	if diff := cmp.Diff(want, g, protocmp.Transform()); diff != "" {
		t.Errorf("reprice (-want +got):\n%s", diff)
	}
}

func checkCost(t *testing.T, pu *eventv1.PricedUsage, status eventv1.PricingStatus, list, eff int64) {
	t.Helper()
	if pu.GetPricingStatus() != status || pu.GetListCost().GetNanos() != list ||
		pu.GetEffectiveCost().GetNanos() != eff {
		t.Errorf("%s: %s list %d effective %d, want %s %d %d", pu.GetPricedId(),
			pu.GetPricingStatus(), pu.GetListCost().GetNanos(), pu.GetEffectiveCost().GetNanos(),
			status, list, eff)
	}
	var lineEff int64
	for _, l := range pu.GetCostLines() {
		lineEff += l.GetEffectiveCost().GetNanos()
	}
	if lineEff != eff {
		t.Errorf("%s: lines add up to %d, total says %d", pu.GetPricedId(), lineEff, eff)
	}
}

func checkCorrection(t *testing.T, c *eventv1.PricedUsage, eventID string) {
	t.Helper()
	if c.GetCorrectsEventId() != eventID || c.GetPriceVersion() != 2 ||
		c.GetUsage().GetEventId() != eventID {
		t.Errorf("correction %s corrects %q at v%d, want %s at v2",
			c.GetPricedId(), c.GetCorrectsEventId(), c.GetPriceVersion(), eventID)
	}
}

func waitLedger(t *testing.T, db *pgxpool.Pool, n int) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() (bool, error) {
		var got int
		err := db.QueryRow(context.Background(), `SELECT count(*) FROM pricing.ledger`).Scan(&got)
		return got == n, err
	})
}

func checkLedger(t *testing.T, db *pgxpool.Pool, eventID string, version, eff int64) {
	t.Helper()
	var gotVersion, gotEff int64
	err := db.QueryRow(context.Background(), `SELECT price_version, effective_nanos
		FROM pricing.ledger WHERE tenant_id = 't-e2e' AND event_id = $1`, eventID).
		Scan(&gotVersion, &gotEff)
	if err != nil || gotVersion != version || gotEff != eff {
		t.Errorf("ledger %s: v%d %d (%v), want v%d %d", eventID, gotVersion, gotEff, err, version, eff)
	}
}
