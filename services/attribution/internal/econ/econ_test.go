package econ_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/econ"
	"github.com/costplane/costplane/services/attribution/internal/explore"
	"github.com/costplane/costplane/services/attribution/internal/fake"
	"github.com/costplane/costplane/services/attribution/internal/ingest"
	"github.com/costplane/costplane/services/attribution/internal/testdb"
)

var start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func handle(t *testing.T, pool *pgxpool.Pool, msgs []proto.Message,
	h func(context.Context, pgx.Tx, []*kgo.Record) ([]kafka.Reject, error),
) {
	t.Helper()
	recs := make([]*kgo.Record, 0, len(msgs))
	for _, m := range msgs {
		rec, err := kafka.ProtoRecord("t", nil, m)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		rej, err := h(context.Background(), tx, recs)
		if len(rej) > 0 {
			return fmt.Errorf("rejected: %s", rej[0].Reason)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// nearestRank is the percentile the API promises, computed directly.
func nearestRank(sorted []int64, p float64) int64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func TestUnitEconomicsPerAgent(t *testing.T) {
	pool := testdb.New(t)
	store := ingest.New(ingest.Config{Now: func() time.Time { return start.Add(72 * time.Hour) }},
		slog.New(slog.DiscardHandler))
	g := fake.New(fake.Options{Tenant: "acme", Seed: 5, Start: start.Add(time.Hour),
		Span: 40 * time.Hour, Agents: 3})

	var (
		sent     []*eventv1.PricedUsage
		outcomes []proto.Message
		runCost  = map[string][]int64{}
		resolved = map[string]int64{}
	)
	for i := range 120 {
		trace := g.Trace()
		var cost int64
		for _, p := range trace {
			sent = append(sent, p)
			cost += p.GetEffectiveCost().GetNanos()
		}
		agent := trace[0].GetUsage().GetAgent().GetId()
		runCost[agent] = append(runCost[agent], cost)
		if i%3 == 0 {
			outcomes = append(outcomes, &eventv1.Outcome{
				OutcomeId: fmt.Sprintf("o-%d", i), TenantId: "acme", Type: "ticket_resolved",
				Time:  trace[0].GetUsage().GetStartTime(),
				Value: &eventv1.Money{CurrencyCode: "USD", Nanos: 2_000_000_000},
				RunId: trace[0].GetUsage().GetRunId(),
			})
			resolved[agent]++
		}
	}
	for len(sent) > 0 {
		n := min(100, len(sent))
		msgs := make([]proto.Message, n)
		for i, p := range sent[:n] {
			msgs[i] = p
		}
		handle(t, pool, msgs, store.HandlePriced)
		sent = sent[n:]
	}
	handle(t, pool, outcomes, store.HandleOutcomes)
	handle(t, pool, outcomes, store.HandleOutcomes) // idempotent by outcome id

	ex := explore.New(pool, category.NewStore(pool))
	calc := econ.New(pool, ex)
	groups, err := calc.Compute(context.Background(), "acme", econ.Request{
		Start: start, End: start.Add(48 * time.Hour), By: econ.ByAgent,
	})
	if err != nil {
		t.Fatal(err)
	}

	checked := 0
	for _, grp := range groups {
		costs := runCost[grp.Value]
		if grp.Value == "" || len(costs) == 0 {
			continue
		}
		checked++
		slices.Sort(costs)
		var sum int64
		for _, c := range costs {
			sum += c
		}
		want := econ.Distribution{
			Mean: (sum + int64(len(costs))/2) / int64(len(costs)),
			P50:  nearestRank(costs, 0.5), P95: nearestRank(costs, 0.95),
			P99: nearestRank(costs, 0.99), Max: costs[len(costs)-1],
		}
		if diff := cmp.Diff(want, grp.Current.PerRun); diff != "" {
			t.Errorf("agent %s: cost per run (-want +got):\n%s", grp.Value, diff)
		}
		if grp.Current.Runs != int64(len(costs)) {
			t.Errorf("agent %s: %d runs, want %d", grp.Value, grp.Current.Runs, len(costs))
		}
		checkOutcomes(t, grp, resolved[grp.Value])
		if grp.Change.Eff != nil {
			t.Errorf("agent %s: change against an empty period is %d, want unset",
				grp.Value, *grp.Change.Eff)
		}
	}
	if checked != len(runCost) {
		t.Errorf("economics for %d agents, want %d", checked, len(runCost))
	}
}

func checkOutcomes(t *testing.T, grp econ.Group, n int64) {
	t.Helper()
	cur := grp.Current
	want := []econ.Outcome{{
		Type: "ticket_resolved", Count: n, Value: n * 2_000_000_000,
		CostPerOutcome: (cur.Eff + n/2) / n,
	}}
	if diff := cmp.Diff(want, cur.Outcomes); diff != "" {
		t.Errorf("agent %s: outcomes (-want +got):\n%s", grp.Value, diff)
	}
	roi := (n*2_000_000_000 - cur.Eff) * 10000 / cur.Eff
	if !cur.ROIDefined || math.Abs(float64(cur.ROI-roi)) > 1 {
		t.Errorf("agent %s: ROI %d bp (defined %v), want about %d", grp.Value, cur.ROI,
			cur.ROIDefined, roi)
	}
}

// loadPeriod stores n traces of one agent between from and from+40h, in
// sessions named with prefix, and returns the cost of each session and the
// period's total.
func loadPeriod(t *testing.T, pool *pgxpool.Pool, store *ingest.Store, seed uint64,
	prefix string, from time.Time, n int,
) (map[string]int64, int64) {
	t.Helper()
	g := fake.New(fake.Options{Tenant: "acme", Seed: seed, Start: from, Span: 40 * time.Hour,
		Agents: 1, Sessions: 15})
	sessions := make(map[string]int64)
	var total int64
	var msgs []proto.Message
	for range n {
		trace := g.Trace()
		trace[0].Usage.SessionId = prefix + trace[0].GetUsage().GetSessionId()
		session := trace[0].GetUsage().GetSessionId()
		for _, p := range trace {
			msgs = append(msgs, p)
			sessions[session] += p.GetEffectiveCost().GetNanos()
			total += p.GetEffectiveCost().GetNanos()
		}
	}
	for len(msgs) > 0 {
		k := min(100, len(msgs))
		handle(t, pool, msgs[:k], store.HandlePriced)
		msgs = msgs[k:]
	}
	return sessions, total
}

// TestSessionsAndChangeAgainstPreviousPeriod checks the cost per session
// (multi-turn sessions, each over all its runs) against a direct
// computation, and the change of cost and of cost per session against
// the previous period of equal length.
func TestSessionsAndChangeAgainstPreviousPeriod(t *testing.T) {
	pool := testdb.New(t)
	store := ingest.New(ingest.Config{Now: func() time.Time { return start.Add(72 * time.Hour) }},
		slog.New(slog.DiscardHandler))
	_, prevTotal := loadPeriod(t, pool, store, 21, "before-", start.Add(-48*time.Hour), 20)
	calc := econ.New(pool, explore.New(pool, category.NewStore(pool)))
	before, err := calc.Compute(context.Background(), "acme", econ.Request{
		Start: start.Add(-48 * time.Hour), End: start, By: econ.ByAgent,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 {
		t.Fatalf("previous period: %d groups, want 1", len(before))
	}
	prevMean := before[0].Current.PerSession.Mean

	curSessions, curTotal := loadPeriod(t, pool, store, 22, "now-", start, 45)
	groups, err := calc.Compute(context.Background(), "acme", econ.Request{
		Start: start, End: start.Add(48 * time.Hour), By: econ.ByAgent,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Value != "agent-0" {
		t.Fatalf("groups %+v, want agent-0 alone", groups)
	}
	g := groups[0]

	costs := make([]int64, 0, len(curSessions))
	var sum int64
	for _, c := range curSessions {
		costs = append(costs, c)
		sum += c
	}
	slices.Sort(costs)
	n := int64(len(costs))
	want := econ.Distribution{
		Mean: (sum + n/2) / n, P50: nearestRank(costs, 0.5), P95: nearestRank(costs, 0.95),
		P99: nearestRank(costs, 0.99), Max: costs[len(costs)-1],
	}
	if diff := cmp.Diff(want, g.Current.PerSession); diff != "" {
		t.Errorf("cost per session (-want +got):\n%s", diff)
	}
	if g.Current.Sessions != n {
		t.Errorf("%d sessions, want %d", g.Current.Sessions, n)
	}
	if g.Current.Eff != curTotal || g.Previous.Eff != prevTotal {
		t.Errorf("cost %d now and %d before, want %d and %d", g.Current.Eff, g.Previous.Eff,
			curTotal, prevTotal)
	}
	wantChange, _ := money.MulDiv(curTotal-prevTotal, 10000, prevTotal)
	if g.Change.Eff == nil || *g.Change.Eff != wantChange {
		t.Errorf("change of cost %v, want %d bp", g.Change.Eff, wantChange)
	}
	wantSessionChange, _ := money.MulDiv(want.Mean-prevMean, 10000, prevMean)
	if g.Change.PerSessionMean == nil || *g.Change.PerSessionMean != wantSessionChange {
		t.Errorf("change of cost per session %v, want %d bp", g.Change.PerSessionMean,
			wantSessionChange)
	}
}

// TestUnitEconomicsPerCategoryBucket groups by a category whose rule puts
// agent-0 in bucket A and leaves the rest unattributed: a bucket's cost is
// the cost of its agents' steps, and its runs are the runs whose
// top-level agent falls in it, with percentiles over those runs.
func TestUnitEconomicsPerCategoryBucket(t *testing.T) {
	pool := testdb.New(t)
	store := ingest.New(ingest.Config{Now: func() time.Time { return start.Add(72 * time.Hour) }},
		slog.New(slog.DiscardHandler))
	g := fake.New(fake.Options{Tenant: "acme", Seed: 31, Start: start.Add(time.Hour),
		Span: 40 * time.Hour, Agents: 3})
	bucketOf := func(agent string) string {
		if agent == "agent-0" {
			return "A"
		}
		return category.DefaultBucket
	}
	var (
		sent    []*eventv1.PricedUsage
		msgs    []proto.Message
		runCost = map[string][]int64{}
	)
	for range 90 {
		trace := g.Trace()
		var cost int64
		for _, p := range trace {
			sent = append(sent, p)
			msgs = append(msgs, p)
			cost += p.GetEffectiveCost().GetNanos()
		}
		b := bucketOf(trace[0].GetUsage().GetAgent().GetId())
		runCost[b] = append(runCost[b], cost)
	}
	for len(msgs) > 0 {
		k := min(100, len(msgs))
		handle(t, pool, msgs[:k], store.HandlePriced)
		msgs = msgs[k:]
	}
	wantEff := map[string]int64{}
	for agent, tot := range fake.Expected(sent) {
		wantEff[bucketOf(agent)] += tot.Effective
	}

	cats := category.NewStore(pool)
	c, err := cats.Create(context.Background(), "acme", &category.Category{
		ID: "teams", Rules: []category.Rule{{Bucket: "A", Conditions: []category.Condition{
			{Ref: category.Ref{Dim: dims.Agent}, Op: category.OpIn, Values: []string{"agent-0"}},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	calc := econ.New(pool, explore.New(pool, cats))
	groups, err := calc.Compute(context.Background(), "acme", econ.Request{
		Start: start, End: start.Add(48 * time.Hour), By: econ.ByCategory, Category: c,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 {
		t.Fatalf("%d groups, want A and %s", len(groups), category.DefaultBucket)
	}
	for _, grp := range groups {
		costs := runCost[grp.Value]
		slices.Sort(costs)
		var sum int64
		for _, x := range costs {
			sum += x
		}
		n := int64(len(costs))
		want := econ.Distribution{
			Mean: (sum + n/2) / n, P50: nearestRank(costs, 0.5), P95: nearestRank(costs, 0.95),
			P99: nearestRank(costs, 0.99), Max: costs[len(costs)-1],
		}
		if diff := cmp.Diff(want, grp.Current.PerRun); diff != "" {
			t.Errorf("bucket %s: cost per run (-want +got):\n%s", grp.Value, diff)
		}
		if grp.Current.Eff != wantEff[grp.Value] {
			t.Errorf("bucket %s: cost %d, want %d", grp.Value, grp.Current.Eff,
				wantEff[grp.Value])
		}
	}
}
