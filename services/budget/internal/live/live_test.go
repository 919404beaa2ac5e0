package live

import (
	"testing"
	"time"

	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

const unit = 1_000_000_000

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func budget(id, uid, project string, amount int64, enf budgets.Enforcement) *budgets.Budget {
	var fs []scope.Filter
	if project != "" {
		fs = []scope.Filter{{Dimension: "project", Include: []string{project}}}
	}
	return &budgets.Budget{
		TenantID: "acme", ID: id, UID: uid, Filters: fs, Currency: "USD", Amount: amount,
		Period:      period.Spec{Kind: period.Monthly, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		Thresholds:  []budgets.Threshold{{Kind: budgets.Actual, BasisPoints: 8000}},
		Enforcement: enf, Revision: 1,
	}
}

func newState(t testing.TB, bs ...*budgets.Budget) *State {
	t.Helper()
	set, err := budgets.NewSet(bs, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := New()
	s.SetBudgets(set)
	return s
}

func spent(s *State, uid string, amount, version int64) {
	span := period.Span{Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	s.ApplyTotals([]budgets.PeriodTotal{{TenantID: "acme", UID: uid, Span: span, Spent: amount,
		Version: version}}, now)
}

func attrs(project string) *scope.Attrs {
	a, _ := scope.FromMap(map[string]string{"project": project}, nil, nil)
	return &a
}

func TestCheckDecisions(t *testing.T) {
	s := newState(t,
		budget("team", "u1", "a", 100*unit, budgets.Deny),
		budget("soft", "u2", "b", 100*unit, budgets.Warn),
	)
	spent(s, "u1", 70*unit, 5)
	spent(s, "u2", 99*unit, 5)

	tests := []struct {
		name      string
		project   string
		estimate  int64
		currency  string
		want      Decision
		remaining int64
		applies   bool
	}{
		{"room left", "a", 5 * unit, "", Allow, 30 * unit, true},
		{"reaches the 80 % threshold", "a", 10 * unit, "", Warn, 30 * unit, true},
		{"exactly the rest", "a", 30 * unit, "USD", Warn, 30 * unit, true},
		{"past the amount", "a", 31 * unit, "", Deny, 30 * unit, true},
		{"warn-only budget past the amount", "b", 2 * unit, "", Warn, 1 * unit, true},
		{"other currency", "a", 31 * unit, "EUR", Allow, 0, false},
		{"no budget", "c", 1000 * unit, "", Allow, 0, false},
	}
	for _, tc := range tests {
		got := s.Check(Request{Tenant: "acme", Attrs: attrs(tc.project), Estimate: tc.estimate,
			Currency: tc.currency}, now)
		if got.Decision != tc.want || got.Remaining != tc.remaining || got.Applies != tc.applies {
			t.Errorf("%s: got %v, remaining %d, applies %v; want %v, %d, %v", tc.name,
				got.Decision, got.Remaining, got.Applies, tc.want, tc.remaining, tc.applies)
		}
		if !tc.applies && got.Reason != NoBudget {
			t.Errorf("%s: reason %q", tc.name, got.Reason)
		}
	}
}

func TestOlderTotalsDoNotWin(t *testing.T) {
	s := newState(t, budget("team", "u1", "", 100*unit, budgets.Deny))
	spent(s, "u1", 50*unit, 10)
	spent(s, "u1", 40*unit, 9) // a refresh that read before the commit
	if got, _, _ := s.Spent("u1", now); got != 50*unit {
		t.Errorf("spent = %d, want the newer %d", got, 50*unit)
	}

	// The next period starts from nothing.
	if got, _, _ := s.Spent("u1", time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)); got != 0 {
		t.Errorf("spent in the next period = %d, want 0", got)
	}
}

func TestForecastWarnsAndProjects(t *testing.T) {
	s := newState(t, budget("team", "u1", "", 100*unit, budgets.Deny))
	spent(s, "u1", 40*unit, 1)
	span, _ := s.idx.Load().byUID["u1"].b.Period.At(now)
	o := &Outlook{Span: span, Method: "test", First: period.Day(now), SumLow: 5 * unit,
		SumHigh: 5 * unit}
	for d := period.Day(now); d.Before(span.End); d = d.AddDate(0, 0, 1) {
		o.Mean = append(o.Mean, 3*unit) // 22 days: 1.5 today, 63 after
	}
	s.SetOutlook("u1", o)

	got := s.Check(Request{Tenant: "acme", Attrs: attrs("x")}, now)
	if got.Decision != Warn {
		t.Errorf("decision = %v, want Warn: 40 spent + 64.5 forecast > 100", got.Decision)
	}
	p, ok := s.Project("u1", now)
	if !ok {
		t.Fatal("no projection")
	}
	if p.EndOfPeriod != 104_500_000_000 || p.Lower != 99_500_000_000 ||
		p.Upper != 109_500_000_000 {
		t.Errorf("projection = %+v", p)
	}
	// 40 + 1.5 + 3·k passes 100 on the 20th day after today.
	if want := period.Day(now).AddDate(0, 0, 20); !p.Exceed.Equal(want) {
		t.Errorf("exceed = %s, want %s", p.Exceed, want)
	}
}

// Remaining amounts in different currencies are never compared: the
// answer's is the deciding budget's currency's least.
func TestCheckMixedCurrencies(t *testing.T) {
	eur := budget("eur", "u2", "", 1000*unit, budgets.Deny)
	eur.Currency = "EUR"
	s := newState(t, budget("usd", "u1", "", 100*unit, budgets.Deny), eur)
	spent(s, "u1", 90*unit, 1) // 90 % of the USD budget: warns past 80 %
	got := s.Check(Request{Tenant: "acme", Attrs: attrs("a")}, now)
	if got.Decision != Warn || got.Currency != "USD" || got.Remaining != 10*unit ||
		len(got.Budgets) != 2 {
		t.Errorf("check = %v %s %d (%d budgets); want Warn USD %d from both", got.Decision,
			got.Currency, got.Remaining, len(got.Budgets), 10*unit)
	}

	// Both allow: whichever decides, its remaining is in its currency,
	// not the USD 90 compared with the EUR 1000.
	spent(s, "u1", 10*unit, 2)
	got = s.Check(Request{Tenant: "acme", Attrs: attrs("a")}, now)
	want := map[string]int64{"USD": 90 * unit, "EUR": 1000 * unit}[got.Currency]
	if got.Decision != Allow || got.Remaining != want {
		t.Errorf("check = %v %s %d, want Allow and %d", got.Decision, got.Currency,
			got.Remaining, want)
	}
}
