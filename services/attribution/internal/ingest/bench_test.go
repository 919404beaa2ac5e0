package ingest

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/fake"
	"github.com/costplane/costplane/services/attribution/internal/testdb"
)

// benchEvents is the workload size: ATTRIBUTION_BENCH_EVENTS, default
// 100,000 priced records.
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("ATTRIBUTION_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// benchBatches returns OTLP-like traffic in batches of 1000 records:
// each trace's steps in end order, its invoke_agent span last, so traces
// cut by a batch boundary are re-attributed when their agent arrives.
func benchBatches(n int) [][]*kgo.Record {
	g := fake.New(fake.Options{Tenant: "bench", Seed: 42, Start: time.Now().Add(-24 * time.Hour),
		Span: 24 * time.Hour, Agents: 20, Models: 12, Customers: 50, Sessions: 2000,
		UnpricedPercent: 2})
	var recs []*kgo.Record
	add := func(p *eventv1.PricedUsage) {
		rec, err := kafka.ProtoRecord(kafka.TopicUsagePriced, nil, p)
		if err != nil {
			panic(err)
		}
		recs = append(recs, rec)
	}
	for len(recs) < n {
		trace := g.Trace()
		for i := len(trace) - 1; i >= 0; i-- {
			add(trace[i])
		}
		add(g.Call())
	}
	var out [][]*kgo.Record
	for len(recs) > 0 {
		k := min(1000, len(recs))
		out = append(out, recs[:k])
		recs = recs[k:]
	}
	return out
}

const benchCopyTableSQL = `
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.lines;
CREATE TABLE bench.lines (LIKE attribution.lines INCLUDING ALL) PARTITION BY RANGE (day);`

// BenchmarkStoreVersusCopy writes the same priced records through the
// store (dedup, trace join, rollups, steps, runs, sessions) and, as the
// baseline, with one plain COPY per batch of their raw line rows into a
// table shaped like attribution.lines. Run it with:
//
//	export $(deploy/local/env.sh)
//	cd services/attribution && go test -run '^$' -bench StoreVersusCopy \
//	  -benchtime 1x ./internal/ingest/
func BenchmarkStoreVersusCopy(b *testing.B) {
	pool := testdb.New(b)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, benchCopyTableSQL); err != nil {
		b.Fatal(err)
	}
	batches := benchBatches(benchEvents())
	total := 0
	for _, batch := range batches {
		total += len(batch)
	}

	var storeTime, copyTime time.Duration
	for i := 0; b.Loop(); i++ {
		resetStore(b, pool)
		storeTime += timeIt(b, func() { storeBatches(b, pool, batches) })
		copyTime += timeIt(b, func() { copyBatches(b, pool, batches) })
	}
	storeRate := float64(total*b.N) / storeTime.Seconds()
	copyRate := float64(total*b.N) / copyTime.Seconds()
	b.ReportMetric(storeRate, "store_events/s")
	b.ReportMetric(copyRate, "copy_events/s")
	b.ReportMetric(100*storeRate/copyRate, "store_%_of_copy")
	for k, v := range Phase {
		b.Logf("%-28s %v", k, v)
	}
}

func timeIt(b *testing.B, fn func()) time.Duration {
	b.Helper()
	start := time.Now()
	fn()
	return time.Since(start)
}

func resetStore(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	const sql = `TRUNCATE attribution.lines, attribution.dimsets, attribution.rollup_hour,
  attribution.rollup_day, attribution.rollup_kind_hour, attribution.rollup_kind_day,
  attribution.steps, attribution.runs, attribution.sessions, bench.lines`
	if _, err := pool.Exec(context.Background(), sql); err != nil {
		b.Fatal(err)
	}
}

func storeBatches(b *testing.B, pool *pgxpool.Pool, batches [][]*kgo.Record) {
	b.Helper()
	s := New(Config{}, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for _, batch := range batches {
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := s.HandlePriced(ctx, tx, batch)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// copyBatches decodes the records as the store does and copies their
// line rows, one COPY per batch, each in its own transaction.
func copyBatches(b *testing.B, pool *pgxpool.Pool, batches [][]*kgo.Record) {
	b.Helper()
	d := New(Config{}, nil).dec
	ctx := context.Background()
	for _, batch := range batches {
		rows := make([][]any, 0, len(batch))
		var days []time.Time
		for _, rec := range batch {
			l, err := d.decode(rec)
			if err != nil {
				b.Fatal(err)
			}
			days = append(days, l.day)
			st := int16(l.msg.GetPricingStatus())
			rows = append(rows, l.row(st, st))
		}
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			if err := ensureBenchPartitions(ctx, tx, days); err != nil {
				return err
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"bench", "lines"}, lineColumns,
				pgx.CopyFromRows(rows))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func ensureBenchPartitions(ctx context.Context, tx pgx.Tx, days []time.Time) error {
	seen := map[time.Time]bool{}
	for _, d := range days {
		if seen[d] {
			continue
		}
		seen[d] = true
		sql := `CREATE TABLE IF NOT EXISTS bench.lines_` + d.Format("20060102") +
			` PARTITION OF bench.lines FOR VALUES FROM ('` + d.Format(time.DateOnly) +
			`') TO ('` + d.AddDate(0, 0, 1).Format(time.DateOnly) + `')`
		if _, err := tx.Exec(ctx, sql); err != nil {
			return err
		}
	}
	return nil
}
