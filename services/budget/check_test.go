package budget_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"
	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"

	"github.com/costplane/costplane/libs/apierr"
)

// A budget created after the spend counts the spend of its current period
// at once, from the daily tuple store, raises the thresholds already
// crossed, and is enforced by CheckBudget without waiting for new events.
func TestBackfillThenCheck(t *testing.T) {
	e := newEnv(t, brokers(t, "kfake"))
	e.start(testSettings(), true)
	ctx := e.tenantCtx("acme")
	alerts := e.alertReader()

	day := today()
	e.produce(
		priced{tenant: "acme", id: "p1", day: day, nanos: usd(40), project: "a",
			labels: map[string]string{"team": "search"}},
		priced{tenant: "acme", id: "p2", day: day, nanos: usd(45), project: "a",
			labels: map[string]string{"team": "ads"}},
		priced{tenant: "acme", id: "p3", day: day, nanos: usd(7), project: "b"},
		priced{tenant: "acme", id: "old", day: day.AddDate(0, 0, -40), nanos: usd(1000),
			project: "a"},
	)
	// The events are in the store once an unrelated budget sees them.
	probe := validBudget("probe")
	probe.Scope = nil
	probe.StartTime = nil
	probe.Period = budgetv1.Period_PERIOD_DAILY
	probe.Thresholds = probe.Thresholds[:3]
	if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: probe}); err != nil {
		t.Fatal(err)
	}
	waitSpent(t, ctx, e, "probe", usd(92))

	b := validBudget("team-a")
	b.Thresholds = b.Thresholds[:3]
	if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
		t.Fatal(err)
	}
	spent, _, err := spentOf(ctx, e, "team-a")
	if err != nil || spent != usd(85) {
		t.Fatalf("backfilled spend = %d, %v; want %d", spent, err, usd(85))
	}
	got := collectAlerts(t, alerts, 3) // probe 50 % and 80 %, team-a 50 % and 80 %
	want := []string{
		"probe/BUDGET_THRESHOLD_KIND_ACTUAL/5000",
		"probe/BUDGET_THRESHOLD_KIND_ACTUAL/8000",
		"team-a/BUDGET_THRESHOLD_KIND_ACTUAL/5000",
		"team-a/BUDGET_THRESHOLD_KIND_ACTUAL/8000",
	}
	if diff := cmp.Diff(want, thresholdsOf(got)); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}

	// A label-scoped budget counts only its label's spend.
	lb := validBudget("search")
	lb.Scope.Filters = []*budgetv1.ScopeFilter{{Dimension: "label:team", Include: []string{"search"}}}
	if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: lb}); err != nil {
		t.Fatal(err)
	}
	if spent, _, err := spentOf(ctx, e, "search"); err != nil || spent != usd(40) {
		t.Errorf("label budget spend = %d, %v; want %d", spent, err, usd(40))
	}

	check := func(attrs map[string]string, estimate float64) *budgetv1.CheckBudgetResponse {
		t.Helper()
		resp, err := e.client.CheckBudget(ctx, &budgetv1.CheckBudgetRequest{
			Attributes:    attrs,
			EstimatedCost: &eventv1.Money{CurrencyCode: "USD", Nanos: usd(estimate)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// probe (all spend, $100 a day, $92 spent) and team-a ($100, $85)
	// both apply to project a.
	tests := []struct {
		name      string
		attrs     map[string]string
		estimate  float64
		decision  budgetv1.Decision
		remaining int64
		budgets   int
	}{
		{"small request warns past 80 %", map[string]string{"project": "a"}, 1,
			budgetv1.Decision_DECISION_WARN, usd(8), 2},
		{"request over the rest is denied", map[string]string{"project": "a"}, 9,
			budgetv1.Decision_DECISION_DENY, usd(8), 2},
		{"other project sees only probe", map[string]string{"project": "c"}, 9,
			budgetv1.Decision_DECISION_DENY, usd(8), 1},
	}
	for _, tc := range tests {
		got := check(tc.attrs, tc.estimate)
		if got.GetDecision() != tc.decision || got.GetRemaining().GetNanos() != tc.remaining ||
			len(got.GetBudgets()) != tc.budgets || !got.GetBudgetApplies() {
			t.Errorf("%s: check = %v", tc.name, got)
		}
	}

	other := e.tenantCtx("globex")
	resp, err := e.client.CheckBudget(other, &budgetv1.CheckBudgetRequest{
		Attributes: map[string]string{"project": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDecision() != budgetv1.Decision_DECISION_ALLOW || resp.GetBudgetApplies() ||
		resp.GetReason() != "no budget applies" {
		t.Errorf("check without budgets = %v, want allow, no budget applies", resp)
	}

	_, err = e.client.CheckBudget(ctx, &budgetv1.CheckBudgetRequest{
		Attributes: map[string]string{"team": "x"}})
	if status.Code(err) != codes.InvalidArgument || len(apierr.FieldViolations(err)) != 1 ||
		apierr.FieldViolations(err)[0].Field != "attributes[team]" {
		t.Errorf("check with an unknown attribute: %v", err)
	}
}

// Spend that arrives moves CheckBudget's answer within the consumer's
// commit, without a database read on the check.
func TestCheckFollowsSpend(t *testing.T) {
	e := newEnv(t, brokers(t, "kfake"))
	e.start(testSettings(), true)
	ctx := e.tenantCtx("acme")

	b := validBudget("team-a")
	b.Enforcement = budgetv1.Enforcement_ENFORCEMENT_WARN
	if _, err := e.client.CreateBudget(ctx, &budgetv1.CreateBudgetRequest{Budget: b}); err != nil {
		t.Fatal(err)
	}
	req := &budgetv1.CheckBudgetRequest{Attributes: map[string]string{"project": "a"}}
	resp, err := e.client.CheckBudget(ctx, req)
	if err != nil || resp.GetDecision() != budgetv1.Decision_DECISION_ALLOW ||
		resp.GetRemaining().GetNanos() != usd(100) {
		t.Fatalf("fresh budget check = %v, %v", resp, err)
	}

	e.produce(priced{tenant: "acme", id: "x", day: today(), nanos: usd(120), project: "a"})
	eventually(t, 30*time.Second, func() error {
		resp, err = e.client.CheckBudget(ctx, req)
		if err != nil {
			return err
		}
		if resp.GetRemaining().GetNanos() != usd(-20) {
			return fmt.Errorf("remaining = %d", resp.GetRemaining().GetNanos())
		}
		return nil
	})
	if resp.GetDecision() != budgetv1.Decision_DECISION_WARN {
		t.Errorf("over a warn-only budget: %v, want WARN", resp.GetDecision())
	}
}
