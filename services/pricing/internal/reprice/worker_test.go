package reprice_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/pricing/internal/ledger"
	"github.com/costplane/costplane/services/pricing/internal/reprice"
	"github.com/costplane/costplane/services/pricing/internal/testenv"
	"github.com/costplane/costplane/services/pricing/pricebook"
)

const kIn = eventv1.QuantityKind_QUANTITY_KIND_INPUT

// fillLedger prices n acme-llm-9 events with the shipped catalog, which
// does not know the model, and stores them as the ledger consumer would.
func fillLedger(t *testing.T, db *pgxpool.Pool, n int) {
	t.Helper()
	book := testenv.Book(t, nil)
	var recs []*kgo.Record
	for i := range n {
		ev := testenv.Event("t", fmt.Sprintf("ev-%d", i), "acme", "acme-llm-9",
			fmt.Sprintf("2026-11-01T10:00:0%dZ", i), testenv.Q{Kind: kIn, Amount: 1000})
		pu := book.Price(ev, nil)
		pu.PriceVersion = 1
		r, err := kafka.ProtoRecord("priced", []byte("t/"+ev.GetEventId()), pu)
		if err != nil {
			t.Fatalf("ProtoRecord: %v", err)
		}
		recs = append(recs, r)
	}
	err := pg.InTx(context.Background(), db, func(tx pgx.Tx) error {
		rejects, err := ledger.New(log.Discard()).Handle(context.Background(), tx, recs)
		if len(rejects) > 0 {
			return fmt.Errorf("rejects: %v", rejects)
		}
		return err
	})
	if err != nil {
		t.Fatalf("filling the ledger: %v", err)
	}
}

// TestWorkerResumesAfterCrash plays a crash between the Kafka commit of a
// chunk's corrections and the deletion of its outbox rows. The resumed
// job publishes that chunk again, with the same ids and bytes, and the
// job's counts stay exact.
func TestWorkerResumesAfterCrash(t *testing.T) {
	testenv.Clusters(t, func(t *testing.T, brokers []string) {
		db := testenv.DB(t)
		kcfg := testenv.KafkaConfig(brokers)
		testenv.EnsureTopics(t, kcfg)
		const events = 5
		fillLedger(t, db, events)

		jobs := reprice.NewStore(db)
		from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		if _, err := jobs.Create(context.Background(), reprice.Job{
			TenantID: "t", ID: "rp-1", From: from, To: from.AddDate(0, 0, 1), Reason: "test",
		}); err != nil {
			t.Fatalf("Create: %v", err)
		}

		var crashes atomic.Int32
		book := testenv.Book(t, map[string]string{"acme.yaml": testenv.AcmeCatalog})
		w, err := reprice.NewWorker(reprice.WorkerConfig{
			Pool: db, Book: book,
			Rates: func(context.Context, string) (*pricebook.TenantRates, error) { return nil, nil },
			Kafka: kcfg, Topic: kcfg.Topics.UsagePriced,
			TransactionalID: testenv.Unique("reprice"), Owner: "w1",
			Chunk: 2, Poll: 50 * time.Millisecond, Lease: 10 * time.Second,
			Log: log.Discard(),
			AfterPublish: func(reprice.Job) error {
				if crashes.Add(1) == 1 {
					return errors.New("simulated crash")
				}
				return nil
			},
		})
		if err != nil {
			t.Fatalf("NewWorker: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()

		var job reprice.Job
		testenv.Eventually(t, 60*time.Second, func() (bool, error) {
			job, err = jobs.Get(context.Background(), "t", "rp-1")
			return err == nil && job.Done(), err
		})
		if job.State != reprice.StateSucceeded || job.Scanned != events || job.Corrected != events ||
			job.NewlyPriced != events || job.EffectiveDelta != events*1_000_000 {
			t.Errorf("job = %+v, want succeeded with %d scanned, corrected and newly priced, "+
				"delta %d", job, events, events*1_000_000)
		}

		// Chunks of 2, 2 and 1; the first is published twice.
		recs := testenv.ReadAtLeast(t, brokers, kcfg.Topics.UsagePriced, events+2, time.Second)
		if len(recs) != events+2 {
			t.Errorf("%d records on the priced topic, want %d", len(recs), events+2)
		}
		byID := map[string][]byte{}
		for _, r := range recs {
			pu := &eventv1.PricedUsage{}
			if err := kafka.UnmarshalProto(r, pu); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			if prev, ok := byID[pu.GetPricedId()]; ok && !bytes.Equal(prev, r.Value) {
				t.Errorf("%s published twice with different bytes", pu.GetPricedId())
			}
			byID[pu.GetPricedId()] = r.Value
		}
		want := []string{"ev-0@v2", "ev-1@v2", "ev-2@v2", "ev-3@v2", "ev-4@v2"}
		if got := testenv.SortedKeys(byID); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("distinct priced ids = %v, want %v", got, want)
		}

		var left int
		if err := db.QueryRow(context.Background(),
			`SELECT count(*) FROM pricing.reprice_outbox`).Scan(&left); err != nil || left != 0 {
			t.Errorf("outbox holds %d rows (%v), want 0", left, err)
		}
	})
}

func TestStoreListIsTenantScopedAndNewestFirst(t *testing.T) {
	jobs := reprice.NewStore(testenv.DB(t))
	ctx := context.Background()
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, j := range []reprice.Job{
		{TenantID: "a", ID: "rp_1"}, {TenantID: "a", ID: "rp_2"}, {TenantID: "b", ID: "rp_3"},
	} {
		j.From, j.To, j.Reason = from, from.Add(time.Hour), "r"
		if _, err := jobs.Create(ctx, j); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	got, err := jobs.List(ctx, "a", "", 10)
	if err != nil || len(got) != 2 || got[0].ID != "rp_2" || got[1].ID != "rp_1" {
		t.Errorf("List(a) = %+v, %v; want rp_2, rp_1", got, err)
	}
	if _, err := jobs.Get(ctx, "b", "rp_1"); !errors.Is(err, reprice.ErrNotFound) {
		t.Errorf("Get of another tenant's job: %v, want ErrNotFound", err)
	}
}
