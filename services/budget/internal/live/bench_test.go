package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

// BenchmarkCheck is the in-memory part of CheckBudget alone: matching a
// request against 50 budgets of its tenant (and 950 of other tenants)
// and deciding, without gRPC, authentication or protobuf.
func BenchmarkCheck(b *testing.B) {
	projects := []string{"search", "ads", "support", "billing", "growth", "infra", "ml"}
	var bs []*budgets.Budget
	for i := range 1000 {
		bud := budget(fmt.Sprintf("b-%d", i), fmt.Sprintf("u%d", i), projects[i%len(projects)],
			int64(100+i)*unit, budgets.Deny)
		bud.TenantID = fmt.Sprintf("t%d", i%20)
		bud.Filters = append(bud.Filters, scope.Filter{Dimension: "provider",
			Exclude: []string{fmt.Sprintf("x-%d", i)}})
		bud.Period = period.Spec{Kind: period.Kind(1 + i%5),
			Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
		bs = append(bs, bud)
	}
	s := newState(b, bs...)
	reqs := make([]Request, len(projects))
	for i, p := range projects {
		a, _ := scope.FromMap(map[string]string{"project": p, "provider": "openai",
			"model": "gpt-4o", "app": "bench"}, nil, nil)
		reqs[i] = Request{Tenant: "t3", Attrs: &a, Estimate: unit}
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if res := s.Check(reqs[i%len(reqs)], now); !res.Applies {
			b.Fatal("no budget applied")
		}
	}
}
