package attribution_test

// The benchmarks of issue 5. Each needs DATABASE_URL, and the consumer
// ones KAFKA_BROKERS (a real broker: kfake would measure kfake), and
// skips otherwise. Run them once each; they are heavy:
//
//	export $(deploy/local/env.sh); cd services/attribution
//	go test -run '^$' -bench ConsumeVersusCopy -benchtime 1x .
//	go test -run '^$' -bench ExplorerQuery10M -benchtime 200x -timeout 60m .
//	go test -run '^$' -bench EventToQueryable -benchtime 200x .

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/fake"
)

// realBrokers returns KAFKA_BROKERS, skipping the benchmark without it.
func realBrokers(b *testing.B) []string {
	b.Helper()
	v := os.Getenv("KAFKA_BROKERS")
	if v == "" {
		b.Skip("KAFKA_BROKERS is not set; this benchmark needs a real broker")
	}
	if os.Getenv("DATABASE_URL") == "" {
		b.Skip("DATABASE_URL is not set")
	}
	return strings.Split(v, ",")
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// benchTraffic returns n priced records shaped like OTLP traffic: each
// trace's steps in end order, its invoke_agent span last (so the trace
// join re-attributes steps already stored), and a gateway call per trace.
func benchTraffic(o fake.Options, n int) []*eventv1.PricedUsage {
	g := fake.New(o)
	out := make([]*eventv1.PricedUsage, 0, n+8)
	for len(out) < n {
		trace := g.Trace()
		for i := len(trace) - 1; i >= 0; i-- {
			out = append(out, trace[i])
		}
		out = append(out, g.Call())
	}
	return out[:n]
}

// consumeTraffic are the traffic shapes of BenchmarkConsumeVersusCopy.
//
// worst_case spreads the events over a day with every agent calling
// every model for 50 customers drawn evenly: about 8 in 10 lines bring a
// dimension set of their own, so nearly every line is a new rollup row.
//
// realistic is live traffic as services/loadgen shapes it: the last hour
// (a consumer keeping up reads the present), 10 agents of 2 apps, each on
// 2 of 12 models, 60 customers of which the first ones spend the most.
func consumeTraffic(tenant string) []struct {
	name string
	opts fake.Options
} {
	now := time.Now()
	return []struct {
		name string
		opts fake.Options
	}{
		{"worst_case", fake.Options{Tenant: tenant, Seed: 42, Start: now.Add(-24 * time.Hour),
			Span: 24 * time.Hour, Agents: 20, Models: 12, Customers: 50, Sessions: 2000,
			UnpricedPercent: 2}},
		{"realistic", fake.Options{Tenant: tenant, Seed: 42, Start: now.Add(-time.Hour),
			Span: time.Hour, Agents: 10, Models: 12, ModelsPerAgent: 2, Customers: 60,
			SkewCustomers: true, Sessions: 2000, UnpricedPercent: 2}},
	}
}

// commitClock notes when the consumer committed its batches.
type commitClock struct {
	mu            sync.Mutex
	first, last   time.Time
	firstRecords  int
	batches, recs int
}

func (c *commitClock) note(k kafka.Commit) {
	if k.Records == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.first.IsZero() {
		c.first, c.firstRecords = now, k.Records
	}
	c.last = now
	c.batches++
	c.recs += k.Records
}

// BenchmarkConsumeVersusCopy measures (a): priced events per second into
// the store through the real consumer path (a real Kafka broker, the
// kafka.Runner, decoding, dedup, the trace join, rollups, steps, runs and
// sessions, offsets in the same transaction), beside plain COPY of the
// same raw line rows into a table shaped like attribution.lines, in
// transactions of the consumer's mean batch size, in the same run.
//
// The records are on the topic before the consumer starts, and the rate
// is taken from its first commit to its last, so that the consumer
// group's join does not count. ATTRIBUTION_BENCH_EVENTS sets the size
// (default 100,000), KAFKA_MAX_POLL_RECORDS the consumer's batch limit
// (default the service's, 1,000); the COPY baseline follows the mean
// batch. Each traffic shape of consumeTraffic is a
// sub-benchmark with a COPY baseline of its own.
func BenchmarkConsumeVersusCopy(b *testing.B) {
	brokers := realBrokers(b)
	n := envInt("ATTRIBUTION_BENCH_EVENTS", 100_000)
	for _, tc := range consumeTraffic("acme") {
		b.Run(tc.name, func(b *testing.B) {
			benchConsumeVersusCopy(b, brokers, benchTraffic(tc.opts, n))
		})
	}
}

func benchConsumeVersusCopy(b *testing.B, brokers []string, recs []*eventv1.PricedUsage) {
	n := len(recs)
	var storeRate, copyRate float64
	for b.Loop() {
		st := newStack(b, brokers)
		st.kcfg.MaxPollRecords = envInt("KAFKA_MAX_POLL_RECORDS", st.kcfg.MaxPollRecords)
		clock := &commitClock{}
		st.onCommit = clock.note
		st.produce(b, recs)

		st.start(b)
		st.waitCommitted(b, int64(n))
		st.halt()
		span := clock.last.Sub(clock.first)
		storeRate = float64(clock.recs-clock.firstRecords) / span.Seconds()
		batch := clock.recs / clock.batches
		b.Logf("store: %d records in %d batches (mean %d), %v from first to last commit",
			clock.recs, clock.batches, batch, span)
		logCardinality(b, st.pool)

		copyRate = copyLines(b, st.pool, n, batch)
	}
	b.ReportMetric(storeRate, "events/s")
	b.ReportMetric(copyRate, "copy_events/s")
	b.ReportMetric(100*storeRate/copyRate, "pct_of_copy")
}

// logCardinality logs how many rows of each kind the store holds, so that
// the traffic's shape is on record beside the rates.
func logCardinality(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	var lines, sets, hours, steps, runs, sessions int64
	err := pool.QueryRow(context.Background(), `SELECT
	(SELECT count(*) FROM attribution.lines), (SELECT count(*) FROM attribution.dimsets),
	(SELECT count(*) FROM attribution.rollup_hour), (SELECT count(*) FROM attribution.steps),
	(SELECT count(*) FROM attribution.runs), (SELECT count(*) FROM attribution.sessions)`).
		Scan(&lines, &sets, &hours, &steps, &runs, &sessions)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("rows: %d lines, %d dimension sets, %d hourly rollups, %d steps, %d runs, "+
		"%d sessions", lines, sets, hours, steps, runs, sessions)
}

const copyTableSQL = `
CREATE SCHEMA bench_copy;
CREATE TABLE bench_copy.lines (LIKE attribution.lines INCLUDING ALL) PARTITION BY RANGE (day)`

// copyLines reads back the raw line rows the store wrote and copies them
// into a table of the same shape, batch rows per transaction, with
// partitions made beforehand, and returns the rows per second.
func copyLines(b *testing.B, pool *pgxpool.Pool, n, batch int) float64 {
	b.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT * FROM attribution.lines ORDER BY usage_time`)
	if err != nil {
		b.Fatal(err)
	}
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	data, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) {
		return r.Values()
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(data) != n {
		b.Fatalf("the store holds %d lines, want %d", len(data), n)
	}

	if _, err := pool.Exec(ctx, copyTableSQL); err != nil {
		b.Fatal(err)
	}
	days := map[string]bool{}
	for _, r := range data {
		days[r[1].(time.Time).Format(time.DateOnly)] = true
	}
	for d := range days {
		from, _ := time.Parse(time.DateOnly, d)
		sql := "CREATE TABLE bench_copy.lines_" + from.Format("20060102") +
			" PARTITION OF bench_copy.lines FOR VALUES FROM ('" + d + "') TO ('" +
			from.AddDate(0, 0, 1).Format(time.DateOnly) + "')"
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}

	start := time.Now()
	for len(data) > 0 {
		k := min(batch, len(data))
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"bench_copy", "lines"}, cols,
				pgx.CopyFromRows(data[:k]))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		data = data[k:]
	}
	took := time.Since(start)
	b.Logf("copy: %d rows in batches of %d, %v", n, batch, took)
	return float64(n) / took.Seconds()
}

// percentile returns the nearest-rank p-quantile of sorted durations in
// milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return float64(sorted[max(i, 0)]) / float64(time.Millisecond)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 0.5), "p50_ms")
	b.ReportMetric(percentile(lat, 0.99), "p99_ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max_ms")
}

// BenchmarkEventToQueryable measures (c): the time from producing one
// priced event to a real Kafka broker until QueryCosts, over gRPC, counts
// it. Each event has a customer of its own, which the query filters on.
func BenchmarkEventToQueryable(b *testing.B) {
	brokers := realBrokers(b)
	st := newStack(b, brokers)
	st.start(b)
	g := fake.New(fake.Options{Tenant: "acme", Seed: 7, Start: time.Now().Add(-time.Minute),
		Span: time.Second})
	warm := g.Call()
	st.produce(b, []*eventv1.PricedUsage{warm})
	st.waitCommitted(b, 1) // the group has joined

	client := attributionv1.NewCostExplorerServiceClient(st.conn)
	ctx := st.as("acme-read")
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		ev := g.Call()
		ev.Usage.CustomerId = "latency-" + strconv.Itoa(i)
		ev.Usage.StartTime = timestamppb.New(time.Now().Add(-time.Second))
		ev.Usage.EndTime = timestamppb.Now()
		q := &attributionv1.QueryCostsRequest{Query: &attributionv1.CostQuery{
			Lookback:    durationpb.New(time.Hour),
			Granularity: attributionv1.Granularity_GRANULARITY_HOUR,
			Filters: []*attributionv1.Filter{{
				Dimension: &attributionv1.DimensionRef{
					Dimension: attributionv1.Dimension_DIMENSION_CUSTOMER,
				},
				Include: []string{ev.GetUsage().GetCustomerId()},
			}},
			Metrics: []attributionv1.Metric{attributionv1.Metric_METRIC_EVENTS},
		}}

		sent := time.Now()
		st.produce(b, []*eventv1.PricedUsage{ev})
		for {
			res, err := client.QueryCosts(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			if len(res.GetSeries()) > 0 && res.GetSeries()[0].GetTotal().GetEvents() == 1 {
				break
			}
			if time.Since(sent) > 30*time.Second {
				b.Fatalf("event %d not queryable after 30s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(sent))
	}
	reportLatency(b, lat)
}
