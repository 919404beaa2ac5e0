package attribution_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/attribution/internal/fake"
)

var start = time.Now().UTC().Truncate(24 * time.Hour).Add(-48 * time.Hour)

func traffic(seed uint64, traces int) []*eventv1.PricedUsage {
	g := fake.New(fake.Options{Tenant: "acme", Seed: seed, Start: start.Add(time.Hour),
		Span: 40 * time.Hour, UnpricedPercent: 10})
	var out, fixes []*eventv1.PricedUsage
	for range traces {
		out = append(out, g.Trace()...)
		out = append(out, g.Call())
	}
	for i, p := range out {
		if i%7 == 0 && len(p.GetCostLines()) > 0 {
			fixes = append(fixes, fake.Correction(p, 2, 777_777,
				eventv1.PricingStatus_PRICING_STATUS_PRICED))
		}
	}
	return append(out, fixes...)
}

func costQuery() *attributionv1.CostQuery {
	return &attributionv1.CostQuery{
		TimeRange: &attributionv1.TimeRange{
			StartTime: timestamppb.New(start), EndTime: timestamppb.New(start.Add(48 * time.Hour)),
		},
		Granularity: attributionv1.Granularity_GRANULARITY_DAY,
		GroupBy: []*attributionv1.DimensionRef{
			{Dimension: attributionv1.Dimension_DIMENSION_AGENT},
		},
		Metrics: []attributionv1.Metric{
			attributionv1.Metric_METRIC_EFFECTIVE_COST, attributionv1.Metric_METRIC_LIST_COST,
			attributionv1.Metric_METRIC_REQUESTS, attributionv1.Metric_METRIC_EVENTS,
			attributionv1.Metric_METRIC_RUNS, attributionv1.Metric_METRIC_UNPRICED_EVENTS,
		},
	}
}

type agentTotals struct {
	Events, Requests, Unpriced, Runs, List, Effective int64
}

func (st *stack) totalsByAgent(t *testing.T, key string) map[string]agentTotals {
	t.Helper()
	client := attributionv1.NewCostExplorerServiceClient(st.conn)
	res, err := client.QueryCosts(st.as(key), &attributionv1.QueryCostsRequest{
		Query: costQuery(), PageSize: 1000,
	})
	if err != nil {
		t.Fatalf("QueryCosts: %v", err)
	}
	out := make(map[string]agentTotals)
	for _, s := range res.GetSeries() {
		v := s.GetTotal()
		out[s.GetGroupValues()[0]] = agentTotals{
			Events: v.GetEvents(), Requests: v.GetRequests(), Unpriced: v.GetUnpricedEvents(),
			Runs: v.GetRuns(), List: v.GetListCostNanos(), Effective: v.GetEffectiveCostNanos(),
		}
	}
	return out
}

func expected(recs []*eventv1.PricedUsage) map[string]agentTotals {
	out := make(map[string]agentTotals)
	for agent, tot := range fake.Expected(recs) {
		out[agent] = agentTotals{
			Events: tot.Events, Requests: tot.Requests, Unpriced: tot.Unpriced, Runs: tot.Runs,
			List: tot.List, Effective: tot.Effective,
		}
	}
	return out
}

// TestExactlyOnceThroughKafka consumes priced usage, stops, receives every
// record again plus new ones, and restarts: the totals read through the
// API stay exact to the nano, and the restarted consumer resumes from the
// offsets stored in PostgreSQL instead of reading the topic again.
func TestExactlyOnceThroughKafka(t *testing.T) {
	forEachBroker(t, func(t *testing.T, brokers []string) {
		st := newStack(t, brokers)
		first := traffic(1, 40)
		st.produce(t, first)
		st.start(t)
		st.waitCommitted(t, int64(len(first)))
		if diff := cmp.Diff(expected(first), st.totalsByAgent(t, "acme-read")); diff != "" {
			t.Errorf("after the first pass, by agent (-want +got):\n%s", diff)
		}

		st.halt()
		second := traffic(2, 10)
		st.produce(t, first) // every record a second time
		st.produce(t, second)
		st.start(t)
		want := int64(2*len(first) + len(second))
		st.waitCommitted(t, want)
		time.Sleep(500 * time.Millisecond)
		if got := st.committed.Load(); got != want {
			t.Errorf("consumed %d records in all, want %d: the restart re-read the topic", got,
				want)
		}
		all := append(append([]*eventv1.PricedUsage(nil), first...), second...)
		if diff := cmp.Diff(expected(all), st.totalsByAgent(t, "acme-read")); diff != "" {
			t.Errorf("after duplicates and a restart, by agent (-want +got):\n%s", diff)
		}
	})
}

// TestEveryReadIsTenantScoped loads one tenant's data, categories and
// perspectives, and checks that another tenant's keys see none of them.
func TestEveryReadIsTenantScoped(t *testing.T) {
	st := newStack(t, fakeBrokers(t))
	recs := traffic(3, 10)
	st.produce(t, recs)
	st.produceOutcomes(t, []*eventv1.Outcome{{
		OutcomeId: "o1", TenantId: "acme", Type: "ticket_resolved",
		Time: recs[0].GetUsage().GetStartTime(), RunId: recs[0].GetUsage().GetRunId(),
	}})
	st.start(t)
	st.waitCommitted(t, int64(len(recs)+1))

	run, session := recs[0].GetUsage().GetRunId(), recs[0].GetUsage().GetSessionId()
	cats := attributionv1.NewCostCategoryServiceClient(st.conn)
	persp := attributionv1.NewPerspectiveServiceClient(st.conn)
	runs := attributionv1.NewRunServiceClient(st.conn)
	econ := attributionv1.NewUnitEconomicsServiceClient(st.conn)
	explorer := attributionv1.NewCostExplorerServiceClient(st.conn)

	_, err := cats.CreateCostCategory(st.as("acme-admin"), &attributionv1.CreateCostCategoryRequest{
		Category: teamsCategory(),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = persp.CreatePerspective(st.as("acme-admin"), &attributionv1.CreatePerspectiveRequest{
		Perspective: &attributionv1.Perspective{PerspectiveId: "daily", Query: costQuery()},
	})
	if err != nil {
		t.Fatal(err)
	}

	acme, globex := st.as("acme-read"), st.as("globex-read")
	reads := []struct {
		name string
		call func(ctx context.Context) (int, error)
	}{
		{"QueryCosts", func(ctx context.Context) (int, error) {
			r, err := explorer.QueryCosts(ctx, &attributionv1.QueryCostsRequest{Query: costQuery()})
			return len(r.GetSeries()), err
		}},
		{"ExportCostsCsv", func(ctx context.Context) (int, error) {
			r, err := explorer.ExportCostsCsv(ctx,
				&attributionv1.ExportCostsCsvRequest{Query: costQuery()})
			return len(r.GetCsv()) - len("bucket_start,agent,currency,effective_cost_nanos,"+
				"list_cost_nanos,requests,runs,events,unpriced_events\n"), err
		}},
		{"QueryCosts by perspective", func(ctx context.Context) (int, error) {
			r, err := explorer.QueryCosts(ctx,
				&attributionv1.QueryCostsRequest{PerspectiveId: "daily"})
			return len(r.GetSeries()), err
		}},
		{"GetCostCategory", func(ctx context.Context) (int, error) {
			r, err := cats.GetCostCategory(ctx,
				&attributionv1.GetCostCategoryRequest{CategoryId: "teams"})
			return len(r.GetCategory().GetRules()), err
		}},
		{"ListCostCategories", func(ctx context.Context) (int, error) {
			r, err := cats.ListCostCategories(ctx, &attributionv1.ListCostCategoriesRequest{})
			return len(r.GetCategories()), err
		}},
		{"GetPerspective", func(ctx context.Context) (int, error) {
			r, err := persp.GetPerspective(ctx,
				&attributionv1.GetPerspectiveRequest{PerspectiveId: "daily"})
			return len(r.GetPerspective().GetPerspectiveId()), err
		}},
		{"ListPerspectives", func(ctx context.Context) (int, error) {
			r, err := persp.ListPerspectives(ctx, &attributionv1.ListPerspectivesRequest{})
			return len(r.GetPerspectives()), err
		}},
		{"GetUnitEconomics", func(ctx context.Context) (int, error) {
			r, err := econ.GetUnitEconomics(ctx, &attributionv1.GetUnitEconomicsRequest{
				Lookback: durationpb.New(72 * time.Hour),
				GroupBy:  attributionv1.EconomicsGrouping_ECONOMICS_GROUPING_AGENT,
			})
			return len(r.GetGroups()), err
		}},
		{"GetRun", func(ctx context.Context) (int, error) {
			r, err := runs.GetRun(ctx, &attributionv1.GetRunRequest{RunId: run})
			return len(r.GetSteps()), err
		}},
		{"ListRuns", func(ctx context.Context) (int, error) {
			r, err := runs.ListRuns(ctx, &attributionv1.ListRunsRequest{})
			return len(r.GetRuns()), err
		}},
		{"GetSession", func(ctx context.Context) (int, error) {
			r, err := runs.GetSession(ctx, &attributionv1.GetSessionRequest{SessionId: session})
			return len(r.GetTurns()), err
		}},
		{"ListSessions", func(ctx context.Context) (int, error) {
			r, err := runs.ListSessions(ctx, &attributionv1.ListSessionsRequest{})
			return len(r.GetSessions()), err
		}},
	}
	for _, r := range reads {
		if n, err := r.call(acme); err != nil || n <= 0 {
			t.Errorf("%s as the owner: %d items, error %v; want some", r.name, n, err)
		}
		n, err := r.call(globex)
		if err == nil && n > 0 {
			t.Errorf("%s as another tenant: %d items of the owner's data", r.name, n)
		}
		if err != nil && !isCode(err, codes.NotFound) {
			t.Errorf("%s as another tenant: %v, want NOT_FOUND or nothing", r.name, err)
		}
	}

	_, err = cats.CreateCostCategory(acme, &attributionv1.CreateCostCategoryRequest{
		Category: teamsCategory(),
	})
	wantCode(t, "a read key creating a category", err, codes.PermissionDenied)
	_, err = cats.CreateCostCategory(st.as("globex-admin"),
		&attributionv1.CreateCostCategoryRequest{Category: teamsCategory()})
	if err != nil {
		t.Errorf("another tenant reusing a category id: %v", err)
	}
}

func teamsCategory() *attributionv1.CostCategory {
	return &attributionv1.CostCategory{
		CategoryId: "teams", DisplayName: "Teams",
		Rules: []*attributionv1.CategoryRule{{
			Bucket: "Support",
			Conditions: []*attributionv1.Condition{{
				Dimension: &attributionv1.DimensionRef{Dimension: attributionv1.Dimension_DIMENSION_AGENT},
				Operator:  attributionv1.ConditionOperator_CONDITION_OPERATOR_REGEX,
				Values:    []string{"^agent-[01]$"},
			}},
		}},
	}
}

func isCode(err error, c codes.Code) bool {
	return status.Code(err) == c
}
