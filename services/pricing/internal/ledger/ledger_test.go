package ledger_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/internal/correction"
	"github.com/costplane/costplane/services/pricing/internal/ledger"
	"github.com/costplane/costplane/services/pricing/internal/testenv"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

const kIn = eventv1.QuantityKind_QUANTITY_KIND_INPUT

func record(t *testing.T, pu *eventv1.PricedUsage) *kgo.Record {
	t.Helper()
	r, err := kafka.ProtoRecord("priced", []byte("t/"+pu.GetUsage().GetEventId()), pu)
	if err != nil {
		t.Fatalf("ProtoRecord: %v", err)
	}
	return r
}

func handle(t *testing.T, db *pgxpool.Pool, recs ...*kgo.Record) []kafka.Reject {
	t.Helper()
	var rejects []kafka.Reject
	err := pg.InTx(context.Background(), db, func(tx pgx.Tx) error {
		var err error
		rejects, err = ledger.New(log.Discard()).Handle(context.Background(), tx, recs)
		return err
	})
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return rejects
}

func effective(t *testing.T, db *pgxpool.Pool, event string) (int64, *int64) {
	t.Helper()
	var (
		version int64
		eff     *int64
	)
	err := db.QueryRow(context.Background(), `SELECT price_version, effective_nanos
		FROM pricing.ledger WHERE tenant_id = 't' AND event_id = $1`, event).Scan(&version, &eff)
	if err != nil {
		t.Fatalf("reading ledger row %s: %v", event, err)
	}
	return version, eff
}

// TestHandleIsIdempotent feeds first pricings and corrections, some of
// them twice or out of date, and checks the ledger ends where one
// application of each would leave it.
func TestHandleIsIdempotent(t *testing.T) {
	db := testenv.DB(t)
	oldBook := testenv.Book(t, nil)
	newBook := testenv.Book(t, map[string]string{"acme.yaml": testenv.AcmeCatalog})

	ev := testenv.Event("t", "ev-1", "acme", "acme-llm-9", "2026-11-01T10:00:00Z",
		testenv.Q{Kind: kIn, Amount: 3000})
	first := oldBook.Price(ev, nil)
	first.PriceVersion = 1
	if first.GetPricingStatus() != eventv1.PricingStatus_PRICING_STATUS_UNPRICED {
		t.Fatalf("acme-llm-9 is priced by the shipped catalog: %v", first)
	}

	// Priced twice (a replay) in one batch and again in another.
	if rejects := handle(t, db, record(t, first), record(t, first)); len(rejects) != 0 {
		t.Fatalf("rejects: %v", rejects)
	}
	handle(t, db, record(t, first))
	if v, eff := effective(t, db, "ev-1"); v != 1 || eff != nil {
		t.Fatalf("after first pricing: v%d effective %v, want v1 and no cost", v, eff)
	}

	// $1 per million input tokens: 3000 tokens cost 3,000,000 nanos.
	cur := newBook.Price(ev, nil)
	corr, err := correction.Build(first, cur, 2)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	handle(t, db, record(t, corr), record(t, corr))
	if v, eff := effective(t, db, "ev-1"); v != 2 || eff == nil || *eff != 3_000_000 {
		t.Fatalf("after the correction: v%d effective %v, want v2 3000000", v, deref(eff))
	}

	// A discount of 10 % on top: v3 moves it to 2,700,000; a stale v2 read
	// again afterwards changes nothing.
	v2 := newBook.Price(ev, nil)
	v3 := newBook.Price(ev, &pricebook.TenantRates{Discounts: []pricebook.Discount{{
		ID: "d", PercentOffBP: 1000,
	}}})
	corr3, err := correction.Build(v2, v3, 3)
	if err != nil {
		t.Fatalf("Build v3: %v", err)
	}
	handle(t, db, record(t, corr3), record(t, corr))
	if v, eff := effective(t, db, "ev-1"); v != 3 || eff == nil || *eff != 2_700_000 {
		t.Fatalf("after v3 and a stale v2: v%d effective %v, want v3 2700000", v, deref(eff))
	}

	// A correction of an event the ledger never saw goes to the DLQ.
	ghost := testenv.Event("t", "ev-ghost", "acme", "acme-llm-9", "2026-11-01T10:00:00Z",
		testenv.Q{Kind: kIn, Amount: 1})
	gc, err := correction.Build(oldBook.Price(ghost, nil), newBook.Price(ghost, nil), 2)
	if err != nil {
		t.Fatalf("Build ghost: %v", err)
	}
	rejects := handle(t, db, record(t, gc))
	if len(rejects) != 1 || !strings.HasPrefix(rejects[0].Reason, "corrects_event_id:") {
		t.Errorf("rejects of an unknown event's correction: %v", rejects)
	}
}

func TestScanOrderAndRange(t *testing.T) {
	db := testenv.DB(t)
	book := testenv.Book(t, nil)
	var recs []*kgo.Record
	for i, at := range []string{"2026-11-01T10:00:02Z", "2026-11-01T10:00:00Z", "2026-11-02T00:00:00Z"} {
		ev := testenv.Event("t", "ev-"+string(rune('a'+i)), "openai", "gpt-4.1", at,
			testenv.Q{Kind: kIn, Amount: 10})
		pu := book.Price(ev, nil)
		pu.PriceVersion = 1
		recs = append(recs, record(t, pu))
	}
	handle(t, db, recs...)

	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var got []string
	err := ledger.Scan(context.Background(), db, "t", from, from.AddDate(0, 0, 1), 10,
		func(r ledger.Row) error {
			got = append(got, r.EventID)
			return nil
		})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if strings.Join(got, ",") != "ev-b,ev-a" {
		t.Errorf("Scan = %v, want ev-b,ev-a (by start time, end exclusive)", got)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}
