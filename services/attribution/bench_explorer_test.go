package attribution_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/pg"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/fake"
	"github.com/costplane/costplane/services/attribution/internal/ingest"
	"github.com/costplane/costplane/services/attribution/migrations"
)

// The explorer benchmark's data set: 10 million priced calls over 30 days
// across 2,000 dimension sets (20 agents, 12 models, 50 customers), kept
// in a database of its own so that later runs reuse it. seedName changes
// whenever the data set does, which reseeds.
const (
	seedDatabase = "costplane_bench_attribution"
	seedName     = "explorer-10m-30d-v1"
	seedTenant   = "bench"
	seedEvents   = 10_000_000
	seedDays     = 30
	seedDimsets  = 2000
	// seedStepMicros spaces the events evenly: 30 days / 10M events.
	seedStepMicros = int64(seedDays) * 86_400_000_000 / seedEvents
)

var seedStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// seedMarkerSQL makes the table that records finished seeds: a seed that
// was cut short leaves no row and is redone from scratch.
const seedMarkerSQL = `CREATE TABLE IF NOT EXISTS public.bench_seed (
	name text PRIMARY KEY, events bigint NOT NULL, seeded_at timestamptz NOT NULL)`

// BenchmarkExplorerQuery10M measures (b): QueryCosts latency over 10
// million events spanning 30 days, grouped by agent and model, daily,
// called in process with a tenant's principal (no network). "aligned"
// reads whole days (the daily rollups); "ragged" starts and ends inside
// days, so that its edges come from the hourly rollups.
//
// The first run seeds the data set (minutes); later runs find it marked
// as seeded and reuse it.
func BenchmarkExplorerQuery10M(b *testing.B) {
	if os.Getenv("DATABASE_URL") == "" {
		b.Skip("DATABASE_URL is not set")
	}
	pool := seededPool(b)
	svc, err := attribution.New(attribution.DefaultSettings(), attribution.Deps{
		Pool: pool, Logger: log.Discard(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := auth.NewContext(context.Background(), auth.Principal{
		TenantID: seedTenant, Scopes: []auth.Scope{auth.ScopeRead},
	})
	end := seedStart.AddDate(0, 0, seedDays)
	ranges := []struct {
		name     string
		from, to time.Time
	}{
		{"aligned", seedStart, end},
		{"ragged", seedStart.Add(7*time.Hour + 30*time.Minute), end.Add(-5 * time.Hour)},
	}
	for _, r := range ranges {
		b.Run(r.name, func(b *testing.B) {
			req := &attributionv1.QueryCostsRequest{PageSize: 1000, Query: &attributionv1.CostQuery{
				TimeRange: &attributionv1.TimeRange{
					StartTime: timestamppb.New(r.from), EndTime: timestamppb.New(r.to),
				},
				Granularity: attributionv1.Granularity_GRANULARITY_DAY,
				GroupBy: []*attributionv1.DimensionRef{
					{Dimension: attributionv1.Dimension_DIMENSION_AGENT},
					{Dimension: attributionv1.Dimension_DIMENSION_MODEL},
				},
			}}
			var lat []time.Duration
			series := 0
			for b.Loop() {
				t0 := time.Now()
				res, err := svc.QueryCosts(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				series = len(res.GetSeries())
			}
			if series == 0 {
				b.Fatal("the query found no series")
			}
			b.ReportMetric(float64(series), "series")
			reportLatency(b, lat)
		})
	}
}

// seededPool returns a pool on the benchmark's database, creating,
// migrating and seeding it unless a previous run has.
func seededPool(b *testing.B) *pgxpool.Pool {
	b.Helper()
	ctx := context.Background()
	url := os.Getenv("DATABASE_URL")
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	err = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`,
		seedDatabase).Scan(&exists)
	if err != nil {
		b.Fatal(err)
	}
	if !exists {
		_, err := admin.Exec(ctx, "CREATE DATABASE "+seedDatabase+" TEMPLATE template0")
		if err != nil {
			b.Fatal(err)
		}
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.Database = seedDatabase
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := migrations.Apply(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, seedMarkerSQL); err != nil {
		b.Fatal(err)
	}
	var seeded bool
	err = pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM public.bench_seed WHERE name = $1)`,
		seedName).Scan(&seeded)
	if err != nil {
		b.Fatal(err)
	}
	if !seeded {
		t0 := time.Now()
		seed(b, pool)
		b.Logf("seeded %d events in %v", seedEvents, time.Since(t0))
	}
	return pool
}

// seedSets draws the data set's dimension sets.
func seedSets() []dims.Set {
	r := rand.New(rand.NewPCG(5, 10))
	regions := []string{"us-east-1", "eu-west-1", "us-central1"}
	seen := make(map[dims.ID]bool)
	var out []dims.Set
	for len(out) < seedDimsets {
		a, m, c := r.IntN(20), r.IntN(12), r.IntN(50)
		provider, model := fake.Model(m)
		agent := fake.Agent(a)
		s := dims.Set{
			Currency: "USD", Provider: provider, Model: model, ModelVersion: model + "-2025",
			Region: regions[m%3], ServiceTier: "standard", Operation: "chat",
			Account: "acct-" + fmt.Sprint(m%4), Project: "proj-" + fmt.Sprint(a%6),
			App: fmt.Sprintf("app-%d", a%4), Agent: agent.GetId(), AgentName: agent.GetName(),
			Customer: fmt.Sprintf("cust-%d", c), Environment: "prod", Source: "litellm",
			Labels: map[string]string{"team": fmt.Sprintf("team-%d", a%5)},
		}
		if r.IntN(10) == 0 {
			s.Environment = "staging"
		}
		if id := s.ID(); !seen[id] {
			seen[id] = true
			out = append(out, s)
		}
	}
	return out
}

const seedSetsSQL = `
DROP TABLE IF EXISTS public.bench_seed_dims;
CREATE TABLE public.bench_seed_dims (
	idx int PRIMARY KEY, dims_id uuid NOT NULL, provider text, model text,
	model_version text, region text, service_tier text, operation text, account text,
	project text, app text, agent_id text, agent_name text, customer text,
	environment text, source text, labels jsonb);
TRUNCATE attribution.lines, attribution.dimsets, attribution.rollup_hour,
	attribution.rollup_day, attribution.rollup_kind_day`

// seedLinesSQL writes the raw lines of events [$2, $3): event g starts at
// $1 + g steps, has the dimension set of a hash of g, and token counts
// and prices drawn from g; effective cost is 90% of list per line.
const seedLinesSQL = `
WITH e AS (
	SELECT g, $1::timestamptz + g * $4::bigint * interval '1 microsecond' AS t,
	       ((hashint8(g) % $5) + $5) % $5 AS idx,
	       100 + g * 7919 % 5000 AS i, g * 104729 % 3000 AS c, 10 + g * 15485863 % 2000 AS o
	FROM generate_series($2::bigint, $3::bigint - 1) AS g
), p AS (
	SELECT e.*, i * 2500 AS li, c * 250 AS lc, o * 10000 AS lo FROM e
)
INSERT INTO attribution.lines (tenant_id, day, priced_id, event_id, corrects_event_id,
	price_version, usage_time, end_time, pricing_status, current_status, currency,
	list_nanos, effective_nanos, request_count, line_kinds, line_amounts, line_list,
	line_effective, provider, model, model_version, operation, region, service_tier,
	inference_profile, account, project, api_key_id, app, agent_id, agent_name,
	agent_version, session_id, run_id, step_id, parent_step_id, step_kind, tool_name,
	customer_id, user_id, environment, source, trace_id, labels)
SELECT '` + seedTenant + `', (p.t AT TIME ZONE 'UTC')::date, 'ev-' || p.g, 'ev-' || p.g, '',
	1, p.t, p.t + interval '1 second', 1, 1, 'USD', li + lc + lo,
	li * 9 / 10 + lc * 9 / 10 + lo * 9 / 10, 1, '{1,2,5}'::smallint[], ARRAY[i, c, o],
	ARRAY[li, lc, lo], ARRAY[li * 9 / 10, lc * 9 / 10, lo * 9 / 10], d.provider, d.model,
	d.model_version, d.operation, d.region, d.service_tier, '', d.account, d.project, '',
	d.app, d.agent_id, d.agent_name, '', '', '', '', '', 0, '', d.customer, '',
	d.environment, d.source, '', d.labels
FROM p JOIN public.bench_seed_dims d ON d.idx = p.idx`

// seed writes the data set: dimension sets, raw lines day by day, and
// the rollups of each day computed from its lines and stored through the
// consumer's own staging table and upserts (ingest.UpsertRollupsFrom).
func seed(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, seedSetsSQL); err != nil {
		b.Fatal(err)
	}
	var dimRows, seedRows [][]any
	for i, s := range seedSets() {
		id := pgtype.UUID{Bytes: s.ID(), Valid: true}
		row := []any{seedTenant, id}
		for _, v := range s.Values() {
			row = append(row, v)
		}
		dimRows = append(dimRows, append(row, s.LabelsJSON()))
		seedRows = append(seedRows, []any{i, id, s.Provider, s.Model, s.ModelVersion, s.Region,
			s.ServiceTier, s.Operation, s.Account, s.Project, s.App, s.Agent, s.AgentName,
			s.Customer, s.Environment, s.Source, s.LabelsJSON()})
	}
	copies := []struct {
		table []string
		cols  []string
		rows  [][]any
	}{
		{[]string{"attribution", "dimsets"}, append([]string{"tenant_id", "dims_id"},
			dims.Columns...), dimRows},
		{[]string{"public", "bench_seed_dims"}, []string{"idx", "dims_id", "provider", "model",
			"model_version", "region", "service_tier", "operation", "account", "project", "app",
			"agent_id", "agent_name", "customer", "environment", "source", "labels"}, seedRows},
	}
	for _, c := range copies {
		if _, err := pool.CopyFrom(ctx, c.table, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			b.Fatal(err)
		}
	}

	rollups, err := rollupSelect()
	if err != nil {
		b.Fatal(err)
	}
	for d := range seedDays {
		day := seedStart.AddDate(0, 0, d)
		lo := (int64(d)*seedEvents + seedDays - 1) / seedDays
		hi := (int64(d+1)*seedEvents + seedDays - 1) / seedDays
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			if err := ingest.EnsurePartitions(ctx, tx, []time.Time{day}); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, seedLinesSQL, seedStart, lo, hi, seedStepMicros,
				seedDimsets); err != nil {
				return fmt.Errorf("seeding lines: %w", err)
			}
			return ingest.UpsertRollupsFrom(ctx, tx, rollups, seedTenant, day)
		})
		if err != nil {
			b.Fatalf("seeding %s: %v", day.Format(time.DateOnly), err)
		}
	}
	// As the maintenance does, every day that is over is rolled up.
	if err := ingest.RollUpDays(ctx, pool, time.Now()); err != nil {
		b.Fatal(err)
	}
	checkSeed(b, pool)
	for _, sql := range []string{
		`ANALYZE attribution.lines, attribution.dimsets, attribution.rollup_hour,
		 attribution.rollup_day, attribution.rollup_kind_day`,
		`INSERT INTO public.bench_seed VALUES ('` + seedName + `', ` +
			fmt.Sprint(seedEvents) + `, now())`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
}

// rollupSelect builds the SELECT of one day's rollup deltas from its raw
// lines ($1 the tenant, $2 the day), hourly and daily rows, in the column
// order of ingest.StageDeltaColumns. A kind's quantity and money are its
// cost line's; kind 0 ("other") is the money no cost line explains.
func rollupSelect() (string, error) {
	kindOf := func(arr string, k int) string {
		return fmt.Sprintf("sum(coalesce(l.%s[array_position(l.line_kinds, %d::smallint)], 0))",
			arr, k)
	}
	other := func(total, arr string) string {
		return fmt.Sprintf("sum(l.%s - (SELECT coalesce(sum(x), 0) FROM unnest(l.%s) x))",
			total, arr)
	}
	var sel []string
	for _, c := range ingest.StageDeltaColumns() {
		var expr string
		switch c {
		case "daily":
			expr = "x.daily"
		case "tenant_id":
			expr = "l.tenant_id"
		case "bucket":
			expr = "CASE WHEN x.daily THEN date_trunc('day', l.usage_time, 'UTC') " +
				"ELSE date_trunc('hour', l.usage_time, 'UTC') END"
		case "dims_id":
			expr = "d.dims_id"
		case "events":
			expr = "count(*)"
		case "requests":
			expr = "sum(l.request_count)"
		case "runs", "sessions":
			expr = "0"
		case "unpriced":
			expr = "count(*) FILTER (WHERE l.current_status = 2)"
		case "list_nanos", "effective_nanos":
			expr = "sum(l." + c + ")"
		case "list_other":
			expr = other("list_nanos", "line_list")
		case "eff_other":
			expr = other("effective_nanos", "line_effective")
		default:
			expr = kindExpr(c, kindOf)
		}
		if expr == "" {
			return "", fmt.Errorf("no seed expression for rollup column %s", c)
		}
		if c != "daily" && c != "tenant_id" && c != "bucket" && c != "dims_id" {
			expr += "::bigint"
		}
		sel = append(sel, expr)
	}
	return "SELECT " + strings.Join(sel, ", ") + `
FROM attribution.lines l
JOIN public.bench_seed_dims d ON d.agent_id = l.agent_id AND d.model = l.model
	AND d.customer = l.customer_id AND d.environment = l.environment
CROSS JOIN (VALUES (false), (true)) AS x(daily)
WHERE l.tenant_id = $1 AND l.day = $2
GROUP BY 1, 2, 3, 4`, nil
}

// kindExpr maps a per-kind staging column to the sum of its cost lines;
// "" for a column it does not know.
func kindExpr(col string, kindOf func(string, int) string) string {
	for k := 1; k < dims.NumKinds; k++ {
		if dims.QuantityColumns[k-1] == col {
			return kindOf("line_amounts", k)
		}
	}
	for k := range dims.NumKinds {
		switch col {
		case dims.ListColumns[k]:
			return kindOf("line_list", k)
		case dims.EffectiveColumns[k]:
			return kindOf("line_effective", k)
		}
	}
	return ""
}

// checkSeed checks that the rollups hold every seeded event and nano.
func checkSeed(b *testing.B, pool *pgxpool.Pool) {
	b.Helper()
	var lines, linesEff, daily, dailyEff, hourly, hourlyEff int64
	err := pool.QueryRow(context.Background(), `
SELECT (SELECT count(*) FROM attribution.lines WHERE tenant_id = $1),
       (SELECT sum(effective_nanos)::bigint FROM attribution.lines WHERE tenant_id = $1),
       (SELECT sum(events)::bigint FROM attribution.rollup_day WHERE tenant_id = $1),
       (SELECT sum(effective_nanos)::bigint FROM attribution.rollup_day WHERE tenant_id = $1),
       (SELECT sum(events)::bigint FROM attribution.rollup_hour WHERE tenant_id = $1),
       (SELECT sum(effective_nanos)::bigint FROM attribution.rollup_hour WHERE tenant_id = $1)`,
		seedTenant).Scan(&lines, &linesEff, &daily, &dailyEff, &hourly, &hourlyEff)
	if err != nil {
		b.Fatal(err)
	}
	if lines != seedEvents || daily != lines || hourly != lines || dailyEff != linesEff ||
		hourlyEff != linesEff {
		b.Fatalf("seed: %d lines (%d nanos), daily rollups %d (%d), hourly %d (%d)",
			lines, linesEff, daily, dailyEff, hourly, hourlyEff)
	}
}
