package budget_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/apierr"
)

const (
	actual   = eventv1.BudgetThresholdKind_BUDGET_THRESHOLD_KIND_ACTUAL
	forecast = eventv1.BudgetThresholdKind_BUDGET_THRESHOLD_KIND_FORECAST
)

func validBudget(id string) *budgetv1.Budget {
	return &budgetv1.Budget{
		BudgetId:    id,
		DisplayName: "team a",
		Scope: &budgetv1.Scope{Filters: []*budgetv1.ScopeFilter{
			{Dimension: "project", Include: []string{"a"}},
		}},
		Amount:    &eventv1.Money{CurrencyCode: "USD", Nanos: usd(100)},
		Period:    budgetv1.Period_PERIOD_MONTHLY,
		StartTime: timestamppb.New(today().AddDate(0, 0, -3)),
		Thresholds: []*budgetv1.Threshold{
			{Kind: actual, BasisPoints: 5000},
			{Kind: actual, BasisPoints: 8000},
			{Kind: actual, BasisPoints: 10000},
			{Kind: forecast, BasisPoints: 10000},
		},
	}
}

func TestCreateBudgetRejectsBadInput(t *testing.T) {
	e := newEnv(t, nil)
	s := testSettings()
	s.WebhookAllowPrivate = false // the production default
	e.start(s, false)
	ctx := e.tenantCtx("acme")

	tests := []struct {
		name   string
		mutate func(b *budgetv1.Budget)
		fields []string
	}{
		{"zero amount", func(b *budgetv1.Budget) { b.Amount.Nanos = 0 },
			[]string{"budget.amount.nanos"}},
		{"negative amount", func(b *budgetv1.Budget) { b.Amount.Nanos = -5 },
			[]string{"budget.amount.nanos"}},
		{"missing amount", func(b *budgetv1.Budget) { b.Amount = nil },
			[]string{"budget.amount"}},
		{"bad currency", func(b *budgetv1.Budget) { b.Amount.CurrencyCode = "usd" },
			[]string{"budget.amount.currency_code"}},
		{"unknown dimension", func(b *budgetv1.Budget) {
			b.Scope.Filters[0].Dimension = "team"
		}, []string{"budget.scope.filters[0].dimension"}},
		{"empty filter", func(b *budgetv1.Budget) {
			b.Scope.Filters[0].Include = nil
		}, []string{"budget.scope.filters[0].include"}},
		{"value included and excluded", func(b *budgetv1.Budget) {
			b.Scope.Filters[0].Exclude = []string{"a"}
		}, []string{"budget.scope.filters[0].exclude"}},
		{"duplicate threshold", func(b *budgetv1.Budget) {
			b.Thresholds = append(b.Thresholds, &budgetv1.Threshold{Kind: actual, BasisPoints: 8000})
		}, []string{"budget.thresholds[4]"}},
		{"threshold out of range", func(b *budgetv1.Budget) {
			b.Thresholds[0].BasisPoints = 0
		}, []string{"budget.thresholds[0].basis_points"}},
		{"threshold without kind", func(b *budgetv1.Budget) {
			b.Thresholds[1].Kind = eventv1.BudgetThresholdKind_BUDGET_THRESHOLD_KIND_UNSPECIFIED
		}, []string{"budget.thresholds[1].kind"}},
		{"no period", func(b *budgetv1.Budget) { b.Period = 0 }, []string{"budget.period"}},
		{"bad id", func(b *budgetv1.Budget) { b.BudgetId = "Team A" },
			[]string{"budget.budget_id"}},
		{"bad webhook", func(b *budgetv1.Budget) { b.WebhookUrl = "ftp://x" },
			[]string{"budget.webhook_url"}},
		{"webhook to the metadata service", func(b *budgetv1.Budget) {
			b.WebhookUrl = "http://169.254.169.254/latest/meta-data/"
		}, []string{"budget.webhook_url"}},
		{"webhook to localhost", func(b *budgetv1.Budget) {
			b.WebhookUrl = "https://localhost:8443/hook"
		}, []string{"budget.webhook_url"}},
		{"webhook to a private network", func(b *budgetv1.Budget) {
			b.WebhookUrl = "http://[fd12::7]/hook"
		}, []string{"budget.webhook_url"}},
		{"webhook with credentials", func(b *budgetv1.Budget) {
			b.WebhookUrl = "https://user:pw@hooks.example.com/x"
		}, []string{"budget.webhook_url"}},
		{"perspective without attribution", func(b *budgetv1.Budget) {
			b.Scope.PerspectiveId = "p1"
		}, []string{"budget.scope.perspective_id"}},
		{"several problems at once", func(b *budgetv1.Budget) {
			b.Amount.Nanos = 0
			b.Scope.Filters[0].Dimension = "nope"
		}, []string{"budget.amount.nanos", "budget.scope.filters[0].dimension"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := validBudget("b1")
			tc.mutate(b)
			_, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("code = %v (%v), want InvalidArgument", status.Code(err), err)
			}
			var got []string
			for _, v := range apierr.FieldViolations(err) {
				got = append(got, v.Field)
			}
			if diff := cmp.Diff(tc.fields, got); diff != "" {
				t.Errorf("violated fields (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

func TestBudgetCRUD(t *testing.T) {
	e := newEnv(t, nil)
	e.start(testSettings(), false)
	ctx := e.tenantCtx("acme")
	other := e.tenantCtx("globex")

	created, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{
		Budget: validBudget("team-a")})
	if err != nil {
		t.Fatal(err)
	}
	b := created.GetBudget()
	if b.GetRevision() != 1 || b.GetCreateTime() == nil {
		t.Errorf("created budget = %v, want revision 1 and a create time", b)
	}

	_, err = e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: validBudget("team-a")})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	generated, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{
		Budget: validBudget("")})
	if err != nil || generated.GetBudget().GetBudgetId() == "" {
		t.Fatalf("create without id: %v, %v", generated, err)
	}

	got, err := e.client.GetBudget(ctx, &budgetv1.GetBudgetRequest{BudgetId: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b, got.GetBudget(), protocmp.Transform()); diff != "" {
		t.Errorf("get (-created +got):\n%s", diff)
	}
	_, err = e.client.GetBudget(other, &budgetv1.GetBudgetRequest{BudgetId: "team-a"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("another tenant's get: %v, want NotFound", err)
	}

	upd := validBudget("team-a")
	upd.Amount.Nanos = usd(250)
	upd.Revision = 1
	updated, err := e.client.UpdateBudget(ctx, &budgetv1.UpdateBudgetRequest{Budget: upd})
	if err != nil {
		t.Fatal(err)
	}
	if updated.GetBudget().GetRevision() != 2 || updated.GetBudget().GetAmount().GetNanos() != usd(250) {
		t.Errorf("updated = %v", updated.GetBudget())
	}
	_, err = e.client.UpdateBudget(ctx, &budgetv1.UpdateBudgetRequest{Budget: upd})
	if status.Code(err) != codes.Aborted {
		t.Errorf("update at a stale revision: %v, want Aborted", err)
	}

	var ids []string
	token := ""
	for {
		page, err := e.client.ListBudgets(ctx, &budgetv1.ListBudgetsRequest{PageSize: 1,
			PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.GetBudgets() {
			ids = append(ids, b.GetBudgetId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	want := []string{generated.GetBudget().GetBudgetId(), "team-a"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("listed ids (-want +got):\n%s", diff)
	}

	if _, err := e.client.DeleteBudget(ctx, &budgetv1.DeleteBudgetRequest{BudgetId: "team-a"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetBudget(ctx, &budgetv1.GetBudgetRequest{BudgetId: "team-a"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("get after delete: %v, want NotFound", err)
	}
	_, err = e.client.DeleteBudget(ctx, &budgetv1.DeleteBudgetRequest{BudgetId: "team-a"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("second delete: %v, want NotFound", err)
	}
}
