package budget_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/budget"
)

// attribution is a stand-in for the attribution service's perspective and
// category APIs, served over real gRPC so that the budget service's
// client, its forwarding of the caller's key and its conversions run as
// in production. The attribution module itself is another team's, under
// change, so it is not imported.
type attribution struct {
	attributionv1.UnimplementedPerspectiveServiceServer
	attributionv1.UnimplementedCostCategoryServiceServer

	mu           sync.Mutex
	categories   map[string]*attributionv1.CostCategory
	perspectives map[string]*attributionv1.Perspective
	keys         []string // authorization headers seen
}

func (a *attribution) seen(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys = append(a.keys, md.Get("authorization")...)
}

func (a *attribution) GetCostCategory(ctx context.Context,
	req *attributionv1.GetCostCategoryRequest) (*attributionv1.GetCostCategoryResponse, error) {
	a.seen(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.categories[req.GetCategoryId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such category")
	}
	return &attributionv1.GetCostCategoryResponse{Category: c}, nil
}

func (a *attribution) GetPerspective(ctx context.Context,
	req *attributionv1.GetPerspectiveRequest) (*attributionv1.GetPerspectiveResponse, error) {
	a.seen(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.perspectives[req.GetPerspectiveId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such perspective")
	}
	return &attributionv1.GetPerspectiveResponse{Perspective: p}, nil
}

// serveAttribution serves a on loopback and returns a connection to it.
func serveAttribution(t *testing.T, a *attribution) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	attributionv1.RegisterCostCategoryServiceServer(g, a)
	attributionv1.RegisterPerspectiveServiceServer(g, a)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func dimRef(d attributionv1.Dimension) *attributionv1.DimensionRef {
	return &attributionv1.DimensionRef{Dimension: d}
}

// teamsCategory puts projects a and b in bucket "core", label team=ml in
// "ml", and the rest in the default bucket; "shared" has a split.
func teamsCategory() map[string]*attributionv1.CostCategory {
	project := dimRef(attributionv1.Dimension_DIMENSION_PROJECT)
	return map[string]*attributionv1.CostCategory{
		"teams": {CategoryId: "teams", Revision: 3, Rules: []*attributionv1.CategoryRule{
			{Bucket: "core", Conditions: []*attributionv1.Condition{{Dimension: project,
				Operator: attributionv1.ConditionOperator_CONDITION_OPERATOR_IN,
				Values:   []string{"a", "b"}}}},
			{Bucket: "ml", Conditions: []*attributionv1.Condition{{
				Dimension: &attributionv1.DimensionRef{
					Dimension: attributionv1.Dimension_DIMENSION_LABEL, LabelKey: "team"},
				Operator: attributionv1.ConditionOperator_CONDITION_OPERATOR_REGEX,
				Values:   []string{"^m"}}}},
		}},
		"shared": {CategoryId: "shared", Rules: []*attributionv1.CategoryRule{
			{Bucket: "platform", Conditions: []*attributionv1.Condition{{Dimension: project,
				Operator: attributionv1.ConditionOperator_CONDITION_OPERATOR_PREFIX,
				Values:   []string{"infra"}}}},
		}, Splits: []*attributionv1.SharedCostSplit{{Bucket: "platform",
			Method: attributionv1.SplitMethod_SPLIT_METHOD_EVEN}}},
	}
}

// A budget on a cost-category bucket counts the spend the category's rules
// put in the bucket, from the backfill and from new events, and a
// perspective sliced by a category does the same.
func TestCategoryBucketBudgets(t *testing.T) {
	e := newEnv(t, brokers(t, "kfake"))
	attr := &attribution{categories: teamsCategory(),
		perspectives: map[string]*attributionv1.Perspective{
			"ml-view": {PerspectiveId: "ml-view", Query: &attributionv1.CostQuery{
				Filters: []*attributionv1.Filter{{
					Dimension: &attributionv1.DimensionRef{
						Dimension:  attributionv1.Dimension_DIMENSION_CATEGORY,
						CategoryId: "teams"},
					Include: []string{"ml"}}}}},
		}}
	conn := serveAttribution(t, attr)
	e.start(testSettings(), true, func(d *budget.Deps) {
		d.Perspectives = budget.NewPerspectives(conn, "x-costplane-key")
	})
	ctx := e.tenantCtx("acme")

	day := today()
	ml := map[string]string{"team": "ml"}
	e.produce(
		priced{tenant: "acme", id: "a1", day: day, nanos: usd(10), project: "a"},
		priced{tenant: "acme", id: "c1", day: day, nanos: usd(4), project: "c", labels: ml},
		priced{tenant: "acme", id: "d1", day: day, nanos: usd(1), project: "d"},
	)
	probe := validBudget("probe")
	probe.Scope = nil
	probe.Thresholds = nil
	if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: probe}); err != nil {
		t.Fatal(err)
	}
	waitSpent(t, ctx, e, "probe", usd(15))

	core := validBudget("core")
	core.Scope = &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
		{Dimension: "category:teams", Include: []string{"core"}}}}
	rest := validBudget("rest")
	rest.Scope = &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
		{Dimension: "category:teams", Include: []string{"Unattributed"}}}}
	view := validBudget("ml-view")
	view.Scope = &budgetv1.Scope{PerspectiveId: "ml-view"}
	for _, b := range []*budgetv1.Budget{core, rest, view} {
		if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
			t.Fatalf("creating %s: %v", b.GetBudgetId(), err)
		}
	}
	want := map[string]int64{"core": usd(10), "rest": usd(1), "ml-view": usd(4)}
	for id, w := range want {
		if got, _, err := spentOf(ctx, e, id); err != nil || got != w {
			t.Errorf("backfilled %s = %d, %v; want %d", id, got, err, w)
		}
	}

	e.produce(
		priced{tenant: "acme", id: "b2", day: day, nanos: usd(3), project: "b", labels: ml},
		priced{tenant: "acme", id: "e2", day: day, nanos: usd(2), project: "e", labels: ml},
		priced{tenant: "acme", id: "f2", day: day, nanos: usd(5), project: "f"},
	)
	waitSpent(t, ctx, e, "core", usd(13)) // b is core: the first rule wins over ml
	waitSpent(t, ctx, e, "ml-view", usd(6))
	waitSpent(t, ctx, e, "rest", usd(6))

	resp, err := e.client.CheckBudget(ctx, &budgetv1.CheckBudgetRequest{
		Attributes: map[string]string{"project": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range resp.GetBudgets() {
		ids = append(ids, b.GetBudgetId())
	}
	if diff := cmp.Diff([]string{"core", "probe"}, slices.Sorted(slices.Values(ids))); diff != "" {
		t.Errorf("budgets applying to project b (-want +got):\n%s", diff)
	}

	// An ad-hoc forecast of a bucket reads its history through the
	// category's rules: yesterday's spend of label team=mx is in "ml".
	e.produce(priced{tenant: "acme", id: "y1", day: day.AddDate(0, 0, -1), nanos: usd(7),
		project: "zz", labels: map[string]string{"team": "mx"}},
		priced{tenant: "acme", id: "y2", day: day.AddDate(0, 0, -1), nanos: usd(9),
			project: "a", labels: map[string]string{"team": "mx"}})
	eventually(t, 30*time.Second, func() error {
		fc, err := e.client.Forecast(ctx, &budgetv1.ForecastRequest{HorizonDays: 3,
			Scope: &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
				{Dimension: "category:teams", Include: []string{"ml"}}}}})
		if err != nil {
			return err
		}
		var history int64
		for _, d := range fc.GetHistory() {
			history += d.GetCostNanos()
		}
		if history != usd(7) || len(fc.GetForecast()) != 3 {
			return fmt.Errorf("forecast of bucket ml: history %d, %d days ahead", history,
				len(fc.GetForecast()))
		}
		return nil
	})

	attr.mu.Lock()
	if len(attr.keys) == 0 || attr.keys[0] == "" {
		t.Error("the caller's key was not forwarded to attribution")
	}
	attr.mu.Unlock()
}

func TestCategoryScopesRejected(t *testing.T) {
	e := newEnv(t, nil)
	conn := serveAttribution(t, &attribution{categories: teamsCategory()})
	e.start(testSettings(), false, func(d *budget.Deps) {
		d.Perspectives = budget.NewPerspectives(conn, "x-costplane-key")
	})
	ctx := e.tenantCtx("acme")

	tests := []struct {
		name    string
		filters []*budgetv1.ScopeFilter
		field   string
	}{
		{"unknown category", []*budgetv1.ScopeFilter{
			{Dimension: "project", Include: []string{"a"}},
			{Dimension: "category:nope", Include: []string{"x"}}},
			"budget.scope.filters[1].dimension"},
		{"split bucket", []*budgetv1.ScopeFilter{
			{Dimension: "category:shared", Include: []string{"platform"}}},
			"budget.scope.filters[0].dimension"},
		{"bad category id", []*budgetv1.ScopeFilter{
			{Dimension: "category:Bad Id", Include: []string{"x"}}},
			"budget.scope.filters[0].dimension"},
		{"unknown perspective", nil, "budget.scope.perspective_id"},
	}
	for _, tc := range tests {
		b := validBudget("b1")
		b.Scope = &budgetv1.Scope{Filters: tc.filters}
		if tc.filters == nil {
			b.Scope = &budgetv1.Scope{PerspectiveId: "no-such-view"}
		}
		_, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b})
		vs := apierr.FieldViolations(err)
		if status.Code(err) != codes.InvalidArgument || len(vs) != 1 || vs[0].Field != tc.field {
			t.Errorf("%s: %v, want InvalidArgument on %s", tc.name, err, tc.field)
		}
	}

	// Without attribution, category scopes cannot be resolved.
	e2 := newEnv(t, nil)
	e2.start(testSettings(), false)
	ctx2 := e2.tenantCtx("acme")
	b := validBudget("b1")
	b.Scope = &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
		{Dimension: "category:teams", Include: []string{"core"}}}}
	_, err := e2.client.CreateBudget(ctx2, &budgetv1.CreateBudgetRequest{Budget: b})
	if vs := apierr.FieldViolations(err); len(vs) != 1 ||
		vs[0].Field != "budget.scope.filters[0].dimension" {
		t.Errorf("without attribution: %v", err)
	}
}
