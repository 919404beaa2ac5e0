package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
	"github.com/costplane/costplane/services/anomaly/internal/detect"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
	"github.com/costplane/costplane/services/anomaly/internal/testdb"
)

// traffic makes priced usage as agents produce it: many runs open at
// once across tenants, each a few model and tool steps and then its
// top-level agent step, with event time moving a millisecond per event.
type traffic struct {
	rng  *rand.Rand
	at   time.Time
	seq  int
	open []*benchRun
}

type benchRun struct {
	tenant, id, session, agent, app, model string
	steps, left                            int
}

var (
	benchAgents = []string{"triage", "resolver", "researcher", "reviewer", "claims"}
	benchModels = []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-pro"}
)

func newTraffic(open int) *traffic {
	tr := &traffic{rng: rand.New(rand.NewPCG(1, 2)), at: time.Now().Add(-24 * time.Hour)}
	for range open {
		tr.open = append(tr.open, tr.newRun())
	}
	return tr
}

func (tr *traffic) newRun() *benchRun {
	tr.seq++
	a := tr.rng.IntN(len(benchAgents))
	n := 4 + tr.rng.IntN(12)
	return &benchRun{
		tenant: fmt.Sprintf("tenant-%d", tr.seq%4), id: fmt.Sprintf("run-%d", tr.seq),
		session: fmt.Sprintf("sess-%d", tr.seq/3), agent: benchAgents[a],
		app:   []string{"support", "research", "claims"}[a%3],
		model: benchModels[tr.rng.IntN(len(benchModels))], steps: n, left: n,
	}
}

// batch returns n records, partitioned by run as the topic is.
func (tr *traffic) batch(b *testing.B, n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		k := tr.rng.IntN(len(tr.open))
		r := tr.open[k]
		tr.at = tr.at.Add(time.Millisecond)
		tr.seq++
		id := fmt.Sprintf("%s-%d", r.id, r.steps-r.left)
		u := &eventv1.UsageEvent{
			EventId: id, TenantId: r.tenant, RunId: r.id, SessionId: r.session, App: r.app,
			Project: "p-" + r.app, StepId: id, ParentStepId: r.id + "-root",
			StartTime: timestamppb.New(tr.at.Add(-time.Second)), EndTime: timestamppb.New(tr.at),
		}
		p := &eventv1.PricedUsage{PricedId: id, Usage: u,
			PricingStatus: eventv1.PricingStatus_PRICING_STATUS_PRICED}
		switch {
		case r.left == 0: // the run's top-level step: it ends
			u.StepKind, u.StepId, u.ParentStepId = eventv1.StepKind_STEP_KIND_AGENT, r.id+"-root", ""
			u.Agent = &eventv1.Agent{Name: r.agent}
			tr.open[k] = tr.newRun()
		case r.left%3 == 0:
			u.StepKind, u.ToolName = eventv1.StepKind_STEP_KIND_TOOL, "search"
		default:
			u.StepKind, u.Provider, u.Model = eventv1.StepKind_STEP_KIND_LLM, "openai", r.model
			u.Quantities = []*eventv1.Quantity{{Kind: eventv1.QuantityKind_QUANTITY_KIND_INPUT,
				Unit: eventv1.Unit_UNIT_TOKENS, Amount: int64(1000 + 300*(r.steps-r.left))}}
			p.EffectiveCost = &eventv1.Money{CurrencyCode: "USD",
				Nanos: int64(1_000_000 + tr.rng.IntN(20_000_000))}
		}
		r.left--
		rec, err := kafka.ProtoRecord("priced", []byte(r.tenant+"/"+r.id), p)
		if err != nil {
			b.Fatal(err)
		}
		rec.Partition = int32(k % 6)
		rec.Timestamp = time.Now()
		recs[i] = rec
	}
	return recs
}

// BenchmarkConsumer measures the detector's consumer path: decoding
// priced usage, running every real-time detector, and writing the
// batch's series, runs, sessions, baselines, spend seen and anomalies to
// PostgreSQL in the batch's transaction, as the service does per batch
// (offsets excepted). It reports priced events per second.
func BenchmarkConsumer(b *testing.B) {
	pool := testdb.New(b)
	ctx := context.Background()
	cache := policy.NewCache(time.Minute)
	m, err := NewMetrics(nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Group, cfg.Topic = "bench", "priced"
	c := New(cfg, detect.New(detect.DefaultConfig()), cache,
		alert.NewGate(cache, time.Minute, nil), m, slog.New(slog.DiscardHandler), nil)
	c.Assigned(ctx, nil, map[string][]int32{"priced": {0, 1, 2, 3, 4, 5}})

	const batch = 5000 // the service's default ANOMALY_MAX_POLL_RECORDS
	tr := newTraffic(2000)
	handle := func(recs []*kgo.Record) {
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			rejects, err := c.Handle(ctx, tx, recs)
			if len(rejects) > 0 {
				return fmt.Errorf("%d records rejected: %s", len(rejects), rejects[0].Reason)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		c.Committed(kafka.Commit{})
	}
	// A warm-up batch loads the partitions and fills the caches.
	handle(tr.batch(b, batch))

	b.ResetTimer()
	var elapsed time.Duration
	for done := 0; done < b.N; done += batch {
		recs := tr.batch(b, min(batch, b.N-done))
		start := time.Now()
		handle(recs)
		elapsed += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

// BenchmarkDetect measures the in-memory part of the same path: decoding
// and the real-time detectors, without storage. The gap to
// BenchmarkConsumer is what PostgreSQL costs.
func BenchmarkDetect(b *testing.B) {
	det := detect.New(detect.DefaultConfig())
	for p := range int32(6) {
		det.Load(p, nil)
	}
	cache := policy.NewCache(time.Minute)
	c := &Consumer{}
	const batch = 5000
	tr := newTraffic(2000)
	var elapsed time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		recs := tr.batch(b, min(batch, b.N-done))
		start := time.Now()
		evs, rejects := c.decode(recs)
		if len(rejects) > 0 {
			b.Fatalf("%d records rejected: %s", len(rejects), rejects[0].Reason)
		}
		bt := det.Begin(cache, start)
		for i := range evs {
			bt.Apply(&evs[i])
		}
		bt.Sweep()
		det.Commit(bt)
		elapsed += time.Since(start)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
