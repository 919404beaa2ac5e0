package ingest_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/fake"
	"github.com/costplane/costplane/services/attribution/internal/testdb"
)

// stepRow is what the steps table says of a step's attribution.
type stepRow struct {
	Agent, Session string
	Effective      int64
}

func stepRows(t *testing.T, pool *pgxpool.Pool, tenant, run string) map[string]stepRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT step_id, agent_id, session_id, effective_nanos FROM attribution.steps
WHERE tenant_id = $1 AND run_id = $2`, tenant, run)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]stepRow)
	var (
		id string
		r  stepRow
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.Agent, &r.Session, &r.Effective},
		func() error { out[id] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLateAgentReattributesEarlierSteps sends a trace's LLM and tool steps
// first and its invoke_agent span in a later batch, as an OTLP exporter
// does. Before the agent arrives the steps are unattributed; after, every
// step, the run, the session and the rollups by agent belong to it.
func TestLateAgentReattributesEarlierSteps(t *testing.T) {
	pool := testdb.New(t)
	s := newStore()
	g := fake.New(fake.Options{Tenant: "acme", Seed: 9, Start: testStart, Agents: 1})
	var trace []*eventv1.PricedUsage
	for len(trace) < 4 || trace[1].GetUsage().GetStepId() == "sub" {
		trace = g.Trace() // a trace without a nested agent, with a few steps
	}
	root, children := trace[0], trace[1:]
	run := root.GetUsage().GetRunId()
	var total int64
	for _, p := range trace {
		total += p.GetEffectiveCost().GetNanos()
	}

	apply(t, pool, s, children)
	if got := rollupTotals(t, pool, "acme", "hour")[""].Effective; got != total {
		t.Errorf("before the agent span: unattributed cost %d, want %d", got, total)
	}

	apply(t, pool, s, []*eventv1.PricedUsage{root})
	want := make(map[string]stepRow)
	for _, p := range trace {
		want[p.GetUsage().GetStepId()] = stepRow{
			Agent: "agent-0", Session: root.GetUsage().GetSessionId(),
			Effective: p.GetEffectiveCost().GetNanos(),
		}
	}
	if diff := cmp.Diff(want, stepRows(t, pool, "acme", run)); diff != "" {
		t.Errorf("steps after the agent span (-want +got):\n%s", diff)
	}
	checkTotals(t, pool, "acme", trace)
	checkRunsAndSessions(t, pool, "acme", trace)

	var sessions int64
	err := pool.QueryRow(context.Background(),
		`SELECT sum(sessions)::bigint FROM attribution.rollup_hour WHERE tenant_id = 'acme'`,
	).Scan(&sessions)
	if err != nil || sessions != 1 {
		t.Errorf("sessions counted in rollups: %d (%v), want 1", sessions, err)
	}
}

// TestCorrectionPricesUnpricedLine reprices an unpriced call: the money
// arrives as a delta and the call stops counting as unpriced, once.
func TestCorrectionPricesUnpricedLine(t *testing.T) {
	pool := testdb.New(t)
	s := newStore()
	g := fake.New(fake.Options{Tenant: "acme", Seed: 3, Start: testStart, UnpricedPercent: 100})
	orig := g.Call()
	fix := fake.Correction(orig, 2, 123_456_789, eventv1.PricingStatus_PRICING_STATUS_PRICED)
	again := fake.Correction(orig, 3, -23_456_789, eventv1.PricingStatus_PRICING_STATUS_PRICED)

	apply(t, pool, s, []*eventv1.PricedUsage{orig}, []*eventv1.PricedUsage{fix, fix},
		[]*eventv1.PricedUsage{again, fix})
	got := rollupTotals(t, pool, "acme", "hour")[""]
	if got.Unpriced != 0 || got.List != 100_000_000 || got.Events != 1 {
		t.Errorf("after corrections: unpriced %d, list %d, events %d; want 0, 100000000, 1",
			got.Unpriced, got.List, got.Events)
	}
	checkTotals(t, pool, "acme", []*eventv1.PricedUsage{orig, fix, again})
}

func TestBadRecordsAreRejectedWithReason(t *testing.T) {
	pool := testdb.New(t)
	s := ingestWithRetention(t)
	g := fake.New(fake.Options{Tenant: "acme", Seed: 3, Start: testStart})
	noTenant := g.Call()
	noTenant.Usage.TenantId = ""
	noID := g.Call()
	noID.PricedId = ""
	old := g.Call()
	old.Usage.StartTime.Seconds -= 400 * 24 * 3600
	old.Usage.EndTime.Seconds -= 400 * 24 * 3600
	good := g.Call()

	rejects := apply(t, pool, s, []*eventv1.PricedUsage{noTenant, noID, old, good})
	var reasons []string
	for _, r := range rejects {
		reasons = append(reasons, r.Reason)
	}
	want := []string{
		"usage.tenant_id: is required",
		"priced_id: is required",
		"usage.start_time: is older than the raw line retention of 2160h0m0s",
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("reject reasons (-want +got):\n%s", diff)
	}
	checkTotals(t, pool, "acme", []*eventv1.PricedUsage{good})
}
