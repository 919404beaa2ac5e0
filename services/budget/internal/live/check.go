package live

import (
	"fmt"
	"time"

	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

// Decision is a check's answer; the values match the API enum and grow
// with severity.
type Decision int

// The decisions.
const (
	Allow Decision = 1
	Warn  Decision = 2
	Deny  Decision = 3
)

// Request is one budget check.
type Request struct {
	Tenant string
	Attrs  *scope.Attrs
	// Estimate is the request's expected cost in nanos of Currency; an
	// empty Currency means each budget's own.
	Estimate int64
	Currency string
}

// Result is a check's answer.
type Result struct {
	Decision Decision
	// Applies is false when no budget covers the request.
	Applies   bool
	Remaining int64
	Currency  string
	Reason    string
	Budgets   []BudgetResult
}

// BudgetResult is one applicable budget's part of a Result.
type BudgetResult struct {
	Budget    *budgets.Compiled
	Decision  Decision
	Spent     int64
	Remaining int64
	Span      period.Span
	Reason    string
}

// NoBudget is the reason of a check no budget applies to.
const NoBudget = "no budget applies"

// Check answers a budget check from memory. The strictest decision of the
// budgets whose scope and currency cover the request wins. The remaining
// amount is the least of theirs in the deciding budget's currency:
// amounts in different currencies cannot be compared.
func (s *State) Check(req Request, now time.Time) Result {
	res := Result{Decision: Allow}
	for _, e := range s.idx.Load().byTenant[req.Tenant] {
		if res.Budgets == nil {
			res.Budgets = make([]BudgetResult, 0, 4) // one allocation for most checks
		}
		b := e.b
		if req.Currency != "" && req.Currency != b.Currency || !b.Matcher.Match(req.Attrs) {
			continue
		}
		span, ok := e.span(now)
		if !ok {
			continue
		}

		br := e.check(span, req.Estimate, now)
		if !res.Applies || br.Decision > res.Decision {
			res.Decision, res.Reason, res.Currency = br.Decision, br.Reason, b.Currency
		}
		res.Applies = true
		res.Budgets = append(res.Budgets, br)
	}
	if !res.Applies {
		res.Reason, res.Budgets = NoBudget, nil
		return res
	}
	first := true
	for _, br := range res.Budgets {
		if br.Budget.Currency == res.Currency && (first || br.Remaining < res.Remaining) {
			res.Remaining, first = br.Remaining, false
		}
	}
	return res
}

func (e *entry) check(span period.Span, estimate int64, now time.Time) BudgetResult {
	b := e.b
	spent := spentIn(e, span)
	after := spent + estimate
	br := BudgetResult{Budget: b, Decision: Allow, Spent: spent, Remaining: b.Amount - spent,
		Span: span, Reason: e.within}

	switch {
	case after > b.Amount || spent >= b.Amount:
		br.Decision = Deny
		if b.Enforcement == budgets.Warn {
			br.Decision = Warn
		}
		br.Reason = fmt.Sprintf("budget %s would be exceeded: %s spent of %s", b.ID,
			money.Format(spent), money.Format(b.Amount))
	case e.warnAt > 0 && budgets.Reached(after, b.Amount, e.warnAt):
		br.Decision = Warn
		br.Reason = fmt.Sprintf("budget %s would pass %d.%02d%% of its amount", b.ID,
			e.warnAt/100, e.warnAt%100)
	case e.forecastExceeds(span, after, now):
		br.Decision = Warn
		br.Reason = fmt.Sprintf("budget %s is forecast to be exceeded this period", b.ID)
	}
	return br
}

func (e *entry) forecastExceeds(span period.Span, after int64, now time.Time) bool {
	o := e.outlook.Load()
	if o == nil || !o.Span.Start.Equal(span.Start) {
		return false
	}
	return float64(after)+o.remaining(now) > float64(e.b.Amount)
}
