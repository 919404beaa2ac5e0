package budget

import (
	"context"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/services/budget/internal/live"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

// CheckBudget answers from the live state only: no database call is made,
// so its latency does not depend on PostgreSQL.
func (s *Service) CheckBudget(ctx context.Context, req *budgetv1.CheckBudgetRequest) (
	*budgetv1.CheckBudgetResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	attrs, unknown := scope.FromMap(req.GetAttributes(), req.GetLabels(), s.keys)
	var v apierr.Violations
	for _, name := range unknown {
		v.Add("attributes["+name+"]", "unknown dimension; want one of "+
			strings.Join(scope.Names(), ", ")+" or label:<key>")
	}
	est := req.GetEstimatedCost()
	if est.GetNanos() < 0 {
		v.Add("estimated_cost.nanos", "must not be negative")
	}
	if c := est.GetCurrencyCode(); c != "" && !isCurrencyCode(c) {
		v.Add("estimated_cost.currency_code", "must be an ISO 4217 code such as USD")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if s.state.Version() < 0 {
		return nil, apierr.Unavailable("budget state is loading", s.cfg.StateRefresh)
	}

	now := s.now()
	res := s.state.Check(live.Request{Tenant: t, Attrs: &attrs, Estimate: est.GetNanos(),
		Currency: est.GetCurrencyCode()}, now)
	s.metrics.check(res.Decision)
	return checkProto(res), nil
}

func checkProto(res live.Result) *budgetv1.CheckBudgetResponse {
	out := &budgetv1.CheckBudgetResponse{Decision: decisionProto(res.Decision),
		BudgetApplies: res.Applies, Reason: res.Reason}
	if res.Applies {
		out.Remaining = money.New(res.Currency, res.Remaining)
	}
	for _, br := range res.Budgets {
		b := br.Budget
		out.Budgets = append(out.Budgets, &budgetv1.BudgetCheck{
			BudgetId:    b.ID,
			DisplayName: b.Name,
			Decision:    decisionProto(br.Decision),
			Amount:      money.New(b.Currency, b.Amount),
			Spent:       money.New(b.Currency, br.Spent),
			Remaining:   money.New(b.Currency, br.Remaining),
			PeriodEnd:   timestamppb.New(br.Span.End),
			Reason:      br.Reason,
		})
	}
	return out
}
