package ingest_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/fake"
	"github.com/costplane/costplane/services/attribution/internal/ingest"
	"github.com/costplane/costplane/services/attribution/internal/testdb"
)

var testStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func ingestWithRetention(t *testing.T) *ingest.Store {
	t.Helper()
	return ingest.New(ingest.Config{
		Now:       func() time.Time { return testStart.Add(72 * time.Hour) },
		Retention: 90 * 24 * time.Hour,
	}, slog.New(slog.DiscardHandler))
}

func newStore() *ingest.Store {
	return ingest.New(ingest.Config{
		Now: func() time.Time { return testStart.Add(72 * time.Hour) },
	}, slog.New(slog.DiscardHandler))
}

// apply runs each batch through the handler in its own transaction, as
// the kafka.Runner does, and returns the rejects.
func apply(t *testing.T, pool *pgxpool.Pool, s *ingest.Store,
	batches ...[]*eventv1.PricedUsage,
) []kafka.Reject {
	t.Helper()
	var rejects []kafka.Reject
	for i, batch := range batches {
		recs := make([]*kgo.Record, 0, len(batch))
		for _, p := range batch {
			rec, err := kafka.ProtoRecord(kafka.TopicUsagePriced, nil, p)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
			rej, err := s.HandlePriced(context.Background(), tx, recs)
			rejects = append(rejects, rej...)
			return err
		})
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	return rejects
}

// storeRollups reads, as the explorer does, the daily rollups of the days
// rolled up and the hourly ones of the days after them.
const storeRollups = `(
	SELECT * FROM attribution.rollup_day
	WHERE bucket < (SELECT rolled_until FROM attribution.rollup_watermark)
	UNION ALL
	SELECT tenant_id, bucket, dims_id, events, requests, runs, sessions, unpriced,
	       list_nanos, effective_nanos, tok_input, tok_cache_read, tok_cache_write_5m,
	       tok_cache_write_1h, tok_output, tok_reasoning, tok_input_audio,
	       tok_output_audio, tok_input_image, tok_output_image
	FROM attribution.rollup_hour
	WHERE bucket >= (SELECT rolled_until FROM attribution.rollup_watermark))`

// rollupTotals reads per-agent totals from a rollup table ("hour" or
// "day"), or from both as the explorer reads them ("store").
func rollupTotals(t *testing.T, pool *pgxpool.Pool, tenant, grain string) map[string]*fake.Totals {
	t.Helper()
	from := "attribution.rollup_" + grain
	if grain == "store" {
		from = storeRollups
	}
	out := make(map[string]*fake.Totals)
	rows, err := pool.Query(context.Background(), `
SELECT d.agent, sum(events)::bigint, sum(requests)::bigint, sum(unpriced)::bigint,
       sum(runs)::bigint, sum(list_nanos)::bigint, sum(effective_nanos)::bigint,
       sum(tok_input)::bigint, sum(tok_cache_read)::bigint, sum(tok_output)::bigint
FROM `+from+` r
JOIN attribution.dimsets d USING (tenant_id, dims_id)
WHERE r.tenant_id = $1 GROUP BY d.agent`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	var (
		agent              string
		tot                fake.Totals
		input, read, outTo int64
	)
	_, err = pgx.ForEachRow(rows, []any{&agent, &tot.Events, &tot.Requests, &tot.Unpriced,
		&tot.Runs, &tot.List, &tot.Effective, &input, &read, &outTo}, func() error {
		c := tot
		c.Tokens = make(map[eventv1.QuantityKind]int64)
		for k, n := range map[eventv1.QuantityKind]int64{
			eventv1.QuantityKind_QUANTITY_KIND_INPUT:      input,
			eventv1.QuantityKind_QUANTITY_KIND_CACHE_READ: read,
			eventv1.QuantityKind_QUANTITY_KIND_OUTPUT:     outTo,
		} {
			if n != 0 {
				c.Tokens[k] = n
			}
		}
		empty := c.Events == 0 && c.Requests == 0 && c.Unpriced == 0 && c.Runs == 0 &&
			c.List == 0 && c.Effective == 0 && len(c.Tokens) == 0
		if !empty { // rows emptied by moves stay behind
			out[agent] = &c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkKindsAddUp checks that the per-kind money of the hourly rollup
// and of the daily per-kind rollup adds up to the totals.
func checkKindsAddUp(t *testing.T, pool *pgxpool.Pool, tenant string) {
	t.Helper()
	sumOf := func(prefix string) string {
		cols := dims.EffectiveColumns
		if prefix == "list" {
			cols = dims.ListColumns
		}
		return "sum(" + strings.Join(cols, " + ") + ")::bigint"
	}
	for _, q := range []string{
		`SELECT sum(effective_nanos)::bigint, ` + sumOf("eff") + `, sum(list_nanos)::bigint, ` +
			sumOf("list") + ` FROM attribution.rollup_hour WHERE tenant_id = $1`,
		`SELECT (SELECT sum(effective_nanos)::bigint FROM attribution.rollup_day
		         WHERE tenant_id = $1), ` + sumOf("eff") + `,
		        (SELECT sum(list_nanos)::bigint FROM attribution.rollup_day
		         WHERE tenant_id = $1), ` + sumOf("list") + `
		 FROM attribution.rollup_kind_day WHERE tenant_id = $1`,
	} {
		var eff, effKinds, list, listKinds int64
		err := pool.QueryRow(context.Background(), q, tenant).Scan(&eff, &effKinds, &list,
			&listKinds)
		if err != nil {
			t.Fatal(err)
		}
		if eff != effKinds || list != listKinds {
			t.Errorf("kinds add up to %d effective and %d list, totals are %d and %d",
				effKinds, listKinds, eff, list)
		}
	}
}

// checkTotals checks the hourly rollups and the store as the explorer
// reads it against sent, then rolls every day up and checks the daily
// rollups too.
func checkTotals(t *testing.T, pool *pgxpool.Pool, tenant string, sent []*eventv1.PricedUsage) {
	t.Helper()
	want := fake.Expected(sent)
	check := func(grains ...string) {
		for _, grain := range grains {
			if diff := cmp.Diff(want, rollupTotals(t, pool, tenant, grain)); diff != "" {
				t.Errorf("%s totals by agent (-want +got):\n%s", grain, diff)
			}
		}
	}
	check("hour", "store")
	checkDailyMatchesHourly(t, pool)
	if err := ingest.RollUpDays(context.Background(), pool, testStart.AddDate(1, 0, 0)); err != nil {
		t.Fatalf("RollUpDays: %v", err)
	}
	check("day", "store")
	checkDailyMatchesHourly(t, pool)
	checkKindsAddUp(t, pool, tenant)
}

// dailyVersusHourlySQL returns the rows of the rolled-up days where the
// daily rollups and the sums of the hourly ones differ, either way.
var dailyVersusHourlySQL = func() string {
	cols := append(append([]string{"events", "requests", "runs", "sessions", "unpriced",
		"list_nanos", "effective_nanos"}, dims.TokenColumns[:]...), dims.QuantityColumns...)
	cols = append(append(cols, dims.ListColumns...), dims.EffectiveColumns...)
	daily := make([]string, len(cols))
	sums := make([]string, len(cols))
	for i, c := range cols {
		daily[i] = "coalesce(d." + c + ", 0)"
		if i >= 7+len(dims.TokenColumns) { // per-kind money and quantities
			daily[i] = "coalesce(k." + c + ", 0)"
		}
		sums[i] = "sum(" + c + ")::bigint"
	}
	return `
WITH w AS (SELECT rolled_until AS w FROM attribution.rollup_watermark),
daily AS (
	SELECT d.tenant_id, d.bucket, d.dims_id, ` + strings.Join(daily, ", ") + `
	FROM attribution.rollup_day d
	FULL JOIN attribution.rollup_kind_day k USING (tenant_id, bucket, dims_id)
	WHERE coalesce(d.bucket, k.bucket) < (SELECT w FROM w)),
hourly AS (
	SELECT tenant_id, date_trunc('day', bucket, 'UTC'), dims_id, ` +
		strings.Join(sums, ", ") + `
	FROM attribution.rollup_hour WHERE bucket < (SELECT w FROM w) GROUP BY 1, 2, 3)
SELECT count(*) FROM ((TABLE daily EXCEPT TABLE hourly) UNION ALL
	(TABLE hourly EXCEPT TABLE daily)) x`
}()

// checkDailyMatchesHourly checks that every rolled-up day's daily rows,
// per dimension set, are the sums of its hourly rows: batches after the
// roll-up kept them in step.
func checkDailyMatchesHourly(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if n := count(t, pool, dailyVersusHourlySQL); n != 0 {
		t.Errorf("%d daily rollup rows differ from their hourly rows", n)
	}
}

// traffic returns n traces and n plain calls with corrections of some
// calls, in the order a pricing stage would publish them.
func traffic(tenant string, seed uint64, n int) []*eventv1.PricedUsage {
	g := fake.New(fake.Options{
		Tenant: tenant, Seed: seed, Start: testStart, Span: 48 * time.Hour,
		UnpricedPercent: 10,
	})
	var out []*eventv1.PricedUsage
	for range n {
		out = append(out, g.Trace()...)
		out = append(out, g.Call())
	}
	var fixes []*eventv1.PricedUsage
	for i, p := range out {
		if p.GetCostLines() == nil && p.GetPricingStatus() != eventv1.PricingStatus_PRICING_STATUS_UNPRICED {
			continue
		}
		if i%5 == 0 {
			fixes = append(fixes, fake.Correction(p, 2, int64(i*1_000_003),
				eventv1.PricingStatus_PRICING_STATUS_PRICED))
		}
	}
	return append(out, fixes...)
}

// shuffledBatches splits recs into batches of random sizes in a random
// order, so that children and parents of a trace arrive in any order and
// across batches. Corrections stay after first pricings, as they do on a
// partition: they share the key of the event they correct.
func shuffledBatches(recs []*eventv1.PricedUsage, seed uint64) [][]*eventv1.PricedUsage {
	var firsts, fixes []*eventv1.PricedUsage
	for _, p := range recs {
		if p.GetCorrectsEventId() == "" {
			firsts = append(firsts, p)
		} else {
			fixes = append(fixes, p)
		}
	}
	return append(shuffle(firsts, seed), shuffle(fixes, seed+1)...)
}

func shuffle(recs []*eventv1.PricedUsage, seed uint64) [][]*eventv1.PricedUsage {
	r := rand.New(rand.NewPCG(seed, 7))
	shuffled := append([]*eventv1.PricedUsage(nil), recs...)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var out [][]*eventv1.PricedUsage
	for len(shuffled) > 0 {
		n := min(len(shuffled), 1+r.IntN(40))
		out = append(out, shuffled[:n])
		shuffled = shuffled[n:]
	}
	return out
}

func TestTotalsExactInAnyOrderWithDuplicates(t *testing.T) {
	pool := testdb.New(t)
	s := newStore()
	sent := traffic("acme", 1, 60)

	batches := shuffledBatches(sent, 2)
	// Every record again, in another order: nothing may change.
	batches = append(batches, shuffledBatches(sent, 3)...)
	if rej := apply(t, pool, s, batches...); len(rej) > 0 {
		t.Fatalf("rejected %d records, first: %s", len(rej), rej[0].Reason)
	}
	checkTotals(t, pool, "acme", sent)
	checkRunsAndSessions(t, pool, "acme", sent)
}

// TestLateLinesReachRolledUpDays rolls the first day up halfway through
// the traffic: the rest, duplicates, late steps of that day, agents that
// re-attribute its steps and corrections, must reach its daily rows too.
func TestLateLinesReachRolledUpDays(t *testing.T) {
	pool := testdb.New(t)
	s := newStore()
	sent := traffic("acme", 6, 60)
	batches := shuffledBatches(sent, 7)
	half := len(batches) / 2

	apply(t, pool, s, batches[:half]...)
	// A daily row of a day not rolled up, as a consumer of the previous
	// version would write while the migration runs: the roll-up must not
	// count it twice.
	_, err := pool.Exec(context.Background(), `INSERT INTO attribution.rollup_day
		SELECT tenant_id, date_trunc('day', bucket, 'UTC'), dims_id, events, requests, runs,
		       sessions, unpriced, list_nanos, effective_nanos, tok_input, tok_cache_read,
		       tok_cache_write_5m, tok_cache_write_1h, tok_output, tok_reasoning,
		       tok_input_audio, tok_output_audio, tok_input_image, tok_output_image
		FROM attribution.rollup_hour WHERE events > 0 AND bucket < '2026-03-02' LIMIT 1`)
	if err != nil {
		t.Fatal(err)
	}
	if err := ingest.RollUpDays(context.Background(), pool, testStart.Add(30*time.Hour)); err != nil {
		t.Fatalf("RollUpDays: %v", err)
	}
	w, err := ingest.Watermark(context.Background(), pool)
	if want := testStart.AddDate(0, 0, 1); err != nil || !w.Equal(want) {
		t.Fatalf("watermark after the roll-up: %v (%v), want %v", w, err, want)
	}
	rolled := count(t, pool, `SELECT count(*) FROM attribution.rollup_day`)
	if rolled == 0 {
		t.Fatal("the roll-up made no daily rows")
	}
	if n := count(t, pool, `SELECT count(*) FROM attribution.rollup_day
		WHERE bucket >= '2026-03-02'`); n != 0 {
		t.Errorf("%d daily rows of a day not rolled up", n)
	}

	apply(t, pool, s, batches[half:]...)
	apply(t, pool, s, shuffledBatches(sent, 8)...)
	checkDailyMatchesHourly(t, pool)
	checkTotals(t, pool, "acme", sent)
	checkRunsAndSessions(t, pool, "acme", sent)
}

func TestTenantsStayApart(t *testing.T) {
	pool := testdb.New(t)
	s := newStore()
	a, b := traffic("acme", 4, 20), traffic("globex", 4, 20)
	apply(t, pool, s, shuffledBatches(append(append([]*eventv1.PricedUsage(nil), a...), b...), 5)...)
	checkTotals(t, pool, "acme", a)
	checkTotals(t, pool, "globex", b)
}

// runView is what the runs table must say of a run.
type runView struct {
	Agent, Session string
	Effective      int64
	Steps          int64
}

func checkRunsAndSessions(t *testing.T, pool *pgxpool.Pool, tenant string,
	sent []*eventv1.PricedUsage,
) {
	t.Helper()
	want := make(map[string]runView)
	seen := make(map[string]bool)
	sessions := make(map[string]int64)
	for _, p := range sent {
		ev := p.GetUsage()
		if ev.GetRunId() == "" || seen[p.GetPricedId()] {
			continue
		}
		seen[p.GetPricedId()] = true
		v := want[ev.GetRunId()]
		v.Effective += p.GetEffectiveCost().GetNanos()
		if p.GetCorrectsEventId() == "" {
			v.Steps++
		}
		if ev.GetStepId() == "root" {
			v.Agent, v.Session = ev.GetAgent().GetId(), ev.GetSessionId()
		}
		want[ev.GetRunId()] = v
	}
	for _, v := range want {
		sessions[v.Session] += v.Effective
	}

	got := make(map[string]runView)
	rows, err := pool.Query(context.Background(), `
SELECT run_id, agent, session_id, effective_nanos, steps FROM attribution.runs
WHERE tenant_id = $1`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	var (
		id string
		v  runView
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &v.Agent, &v.Session, &v.Effective, &v.Steps},
		func() error { got[id] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}

	gotSessions := make(map[string]int64)
	var runs, total int64
	rows, err = pool.Query(context.Background(), `
SELECT session_id, effective_nanos, runs FROM attribution.sessions WHERE tenant_id = $1`,
		tenant)
	if err != nil {
		t.Fatal(err)
	}
	var eff, n int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &eff, &n}, func() error {
		gotSessions[id], runs, total = eff, runs+n, total+eff
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sessions, gotSessions); diff != "" {
		t.Errorf("session costs (-want +got):\n%s", diff)
	}
	if runs != int64(len(want)) {
		t.Errorf("sessions count %d runs, want %d", runs, len(want))
	}
}
