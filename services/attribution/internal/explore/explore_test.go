package explore_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/pg"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/explore"
	"github.com/costplane/costplane/services/attribution/internal/fake"
	"github.com/costplane/costplane/services/attribution/internal/ingest"
	"github.com/costplane/costplane/services/attribution/internal/testdb"
)

var start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// load stores the records in batches of 50.
func load(t *testing.T, pool *pgxpool.Pool, recs []*eventv1.PricedUsage) {
	t.Helper()
	s := ingest.New(ingest.Config{Now: func() time.Time { return start.Add(72 * time.Hour) }},
		slog.New(slog.DiscardHandler))
	for len(recs) > 0 {
		n := min(50, len(recs))
		batch := make([]*kgo.Record, 0, n)
		for _, p := range recs[:n] {
			rec, err := kafka.ProtoRecord(kafka.TopicUsagePriced, nil, p)
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, rec)
		}
		recs = recs[n:]
		err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error {
			_, err := s.HandlePriced(context.Background(), tx, batch)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func traffic(tenant string, seed uint64) []*eventv1.PricedUsage {
	g := fake.New(fake.Options{Tenant: tenant, Seed: seed, Start: start.Add(90 * time.Minute),
		Span: 40 * time.Hour, UnpricedPercent: 10})
	var out []*eventv1.PricedUsage
	for range 50 {
		out = append(out, g.Trace()...)
		out = append(out, g.Call())
	}
	return out
}

type fixture struct {
	pool *pgxpool.Pool
	cats *category.Store
	ex   *explore.Explorer
	sent []*eventv1.PricedUsage
}

// newFixture stores two tenants' traffic over two days, rolling the first
// day up halfway, so that queries read it daily, lines that came after
// the roll-up included, and the second day hourly.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := testdb.New(t)
	sent := traffic("acme", 11)
	half := len(sent) / 2
	load(t, pool, sent[:half])
	if err := ingest.RollUpDays(context.Background(), pool, start.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	load(t, pool, sent[half:])
	load(t, pool, traffic("globex", 11)) // the same ids in another tenant
	cats := category.NewStore(pool)
	return &fixture{pool: pool, cats: cats, ex: explore.New(pool, cats), sent: sent}
}

func (f *fixture) query(t *testing.T, tenant string, q explore.Query) *explore.Result {
	t.Helper()
	res, err := f.ex.Query(context.Background(), tenant, q)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	return res
}

const allMetrics = explore.MetricEffective | explore.MetricList | explore.MetricTokens |
	explore.MetricRequests | explore.MetricRuns | explore.MetricEvents | explore.MetricUnpriced

func wholeRange(g explore.Granularity) explore.Query {
	return explore.Query{Start: start, End: start.Add(48 * time.Hour), Granularity: g,
		Metrics: allMetrics}
}

func totalsOf(v explore.Values) *fake.Totals {
	t := &fake.Totals{
		Events: v.Events, Requests: v.Requests, Unpriced: v.Unpriced, Runs: v.Runs,
		List: v.List, Effective: v.Eff, Tokens: map[eventv1.QuantityKind]int64{},
	}
	for i, n := range v.Tokens {
		if n != 0 {
			t.Tokens[eventv1.QuantityKind(i+1)] = n
		}
	}
	return t
}

func TestGroupByAgentMatchesSentAtEveryGranularity(t *testing.T) {
	f := newFixture(t)
	want := fake.Expected(f.sent)
	for _, g := range []explore.Granularity{explore.Hour, explore.Day, explore.Week,
		explore.Month} {
		q := wholeRange(g)
		q.GroupBy = []explore.Ref{{Dim: dims.Agent}}
		got := make(map[string]*fake.Totals)
		for _, s := range f.query(t, "acme", q).Series {
			got[s.Groups[0]] = totalsOf(s.Total)
			var sum explore.Values
			for _, p := range s.Points {
				addValues(&sum, p.Values)
			}
			if sum != s.Total {
				t.Errorf("granularity %d, agent %q: points add up to %+v, total %+v", g,
					s.Groups[0], sum, s.Total)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("granularity %d, by agent (-want +got):\n%s", g, diff)
		}
	}
}

func addValues(a *explore.Values, b explore.Values) {
	a.Eff += b.Eff
	a.List += b.List
	for i := range a.Tokens {
		a.Tokens[i] += b.Tokens[i]
	}
	a.Requests += b.Requests
	a.Runs += b.Runs
	a.Sessions += b.Sessions
	a.Events += b.Events
	a.Unpriced += b.Unpriced
}

// direct sums the effective cost of sent records by model whose start is
// in [from, to) and that keep to filter.
func direct(sent []*eventv1.PricedUsage, from, to time.Time,
	keep func(*eventv1.UsageEvent) bool,
) map[string]int64 {
	out := make(map[string]int64)
	for _, p := range sent {
		ev := p.GetUsage()
		at := ev.GetStartTime().AsTime()
		if at.Before(from) || !at.Before(to) || !keep(ev) {
			continue
		}
		out[ev.GetModel()] += p.GetEffectiveCost().GetNanos()
	}
	return out
}

func byModel(res *explore.Result) map[string]int64 {
	out := make(map[string]int64)
	for _, s := range res.Series {
		out[s.Groups[0]] += s.Total.Eff
	}
	return out
}

// TestRangeEdgesAndFilters reads a range that starts and ends inside days,
// so that daily and hourly rollups are combined, with filters.
func TestRangeEdgesAndFilters(t *testing.T) {
	f := newFixture(t)
	from, to := start.Add(5*time.Hour+10*time.Minute), start.Add(37*time.Hour+20*time.Minute)
	alignedFrom, alignedTo := start.Add(5*time.Hour), start.Add(38*time.Hour)
	q := explore.Query{Start: from, End: to, Granularity: explore.Day,
		GroupBy: []explore.Ref{{Dim: dims.Model}}}

	want := direct(f.sent, alignedFrom, alignedTo, func(*eventv1.UsageEvent) bool { return true })
	if diff := cmp.Diff(want, byModel(f.query(t, "acme", q))); diff != "" {
		t.Errorf("by model over a ragged range (-want +got):\n%s", diff)
	}

	q.Filters = []explore.Filter{
		{Ref: explore.Ref{Dim: dims.Customer}, Include: []string{"cust-1", "cust-2"}},
		{Ref: explore.Ref{Dim: dims.Model}, Exclude: []string{"model-0"}},
		{Ref: explore.Ref{Dim: dims.Label, LabelKey: "team"}, Exclude: []string{"team-2"}},
	}
	want = direct(f.sent, alignedFrom, alignedTo, func(ev *eventv1.UsageEvent) bool {
		c := ev.GetCustomerId()
		return (c == "cust-1" || c == "cust-2") && ev.GetModel() != "model-0" &&
			ev.GetLabels()["team"] != "team-2"
	})
	if diff := cmp.Diff(want, byModel(f.query(t, "acme", q))); diff != "" {
		t.Errorf("filtered by model (-want +got):\n%s", diff)
	}
}

func TestTopNAndTokenTypes(t *testing.T) {
	f := newFixture(t)
	all := f.query(t, "acme", wholeRange(explore.Day))
	total := all.Series[0].Total

	q := wholeRange(explore.Day)
	q.GroupBy = []explore.Ref{{Dim: dims.Customer}, {Dim: dims.Model}}
	q.TopN = 3
	res := f.query(t, "acme", q)
	if n := len(res.Series); n != 4 || !res.Series[3].Others {
		t.Fatalf("top 3 gave %d series, last others=%v", n, res.Series[n-1].Others)
	}
	var sum explore.Values
	for _, s := range res.Series {
		addValues(&sum, s.Total)
	}
	if sum != total {
		t.Errorf("top 3 and others add up to %+v, want %+v", sum, total)
	}
	if a, b := res.Series[0].Total.Eff, res.Series[2].Total.Eff; a < b {
		t.Errorf("series not ordered by cost: %d before %d", a, b)
	}

	q = wholeRange(explore.Day)
	q.Metrics = explore.MetricEffective | explore.MetricTokens
	q.GroupBy = []explore.Ref{{Dim: dims.TokenType}}
	var effByKind int64
	tokens := make(map[string]int64)
	for _, s := range f.query(t, "acme", q).Series {
		effByKind += s.Total.Eff
		for i, n := range s.Total.Tokens {
			if n != 0 {
				tokens[s.Groups[0]+"/"+dims.KindName(i+1)] = n
			}
		}
	}
	if effByKind != total.Eff {
		t.Errorf("cost by token type adds up to %d, want %d", effByKind, total.Eff)
	}
	wantTokens := map[string]int64{
		"input/input":           total.Tokens[0],
		"cache_read/cache_read": total.Tokens[1],
		"output/output":         total.Tokens[4],
	}
	if diff := cmp.Diff(wantTokens, tokens); diff != "" {
		t.Errorf("tokens by token type (-want +got):\n%s", diff)
	}
}

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	q := wholeRange(explore.Day)
	if res := f.query(t, "initech", q); len(res.Series) != 0 {
		t.Errorf("a tenant without data sees %d series", len(res.Series))
	}
	acme, globex := f.query(t, "acme", q), f.query(t, "globex", q)
	if diff := cmp.Diff(acme.Series, globex.Series); diff != "" {
		t.Errorf("the same traffic in two tenants differs (-acme +globex):\n%s", diff)
	}

	if _, err := f.cats.Create(context.Background(), "acme", agentCategory("agent-0")); err != nil {
		t.Fatal(err)
	}
	q.GroupBy = []explore.Ref{{Dim: dims.Category, CategoryID: "teams"}}
	_, err := f.ex.Query(context.Background(), "globex", q)
	if !errors.Is(err, explore.ErrCategoryNotFound) {
		t.Errorf("another tenant's category: error %v, want ErrCategoryNotFound", err)
	}
}
