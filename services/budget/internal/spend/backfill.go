package spend

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

const (
	clearBudgetDaysSQL    = `DELETE FROM budget.budget_daily WHERE tenant_id = $1 AND budget_uid = $2`
	clearBudgetPeriodsSQL = `DELETE FROM budget.budget_periods WHERE tenant_id = $1 AND budget_uid = $2`

	tenantTuplesSQL = `SELECT tuple_id, dims FROM budget.tuples WHERE tenant_id = $1`

	backfillDaysSQL = `INSERT INTO budget.budget_daily (tenant_id, budget_uid, day, cost_nanos)
SELECT $1, $2, day, sum(cost_nanos) FROM budget.spend_daily
WHERE tenant_id = $1 AND currency = $3 AND day >= $4 AND tuple_id = ANY($5)
GROUP BY day
RETURNING day, cost_nanos`

	backfillAllDaysSQL = `INSERT INTO budget.budget_daily (tenant_id, budget_uid, day, cost_nanos)
SELECT $1, $2, day, sum(cost_nanos) FROM budget.spend_daily
WHERE tenant_id = $1 AND currency = $3 AND day >= $4
GROUP BY day
RETURNING day, cost_nanos`

	insertPeriodsSQL = `INSERT INTO budget.budget_periods
	(tenant_id, budget_uid, period_start, spent_nanos)
SELECT $1, $2, s, c FROM unnest($3::date[], $4::int8[]) AS x(s, c)
RETURNING period_start, version`
)

// Backfill recomputes the derived spend of b from the daily spend store:
// its daily spend from historyFrom on, and its period totals from
// b.TrackedFrom on. The caller holds the budget-set lock exclusively, so
// no batch is in flight: every batch before the call is in the store and
// every batch after it matches b itself. It returns the totals of the
// periods that have spend.
func Backfill(ctx context.Context, tx pgx.Tx, b *budgets.Compiled, historyFrom time.Time) (
	[]Change, error,
) {
	for _, q := range []string{clearBudgetDaysSQL, clearBudgetPeriodsSQL} {
		if _, err := tx.Exec(ctx, q, b.TenantID, b.UID); err != nil {
			return nil, fmt.Errorf("clearing spend of budget %s: %w", b.ID, err)
		}
	}

	from := historyFrom
	if b.TrackedFrom.Before(from) {
		from = b.TrackedFrom
	}
	var rows pgx.Rows
	var err error
	if len(b.Scope()) == 0 {
		rows, err = tx.Query(ctx, backfillAllDaysSQL, b.TenantID, b.UID, b.Currency, from)
	} else {
		ids, merr := matchingTuples(ctx, tx, b)
		if merr != nil {
			return nil, merr
		}
		if len(ids) == 0 {
			return nil, nil
		}
		rows, err = tx.Query(ctx, backfillDaysSQL, b.TenantID, b.UID, b.Currency, from, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("backfilling budget %s: %w", b.ID, err)
	}

	sums := make(map[time.Time]*Change)
	var order []time.Time
	var (
		day  time.Time
		cost int64
	)
	_, err = pgx.ForEachRow(rows, []any{&day, &cost}, func() error {
		span, ok := b.Period.At(period.Day(day))
		if !ok || span.Start.Before(b.TrackedFrom) {
			return nil
		}
		c := sums[span.Start]
		if c == nil {
			c = &Change{Budget: b, PeriodTotal: budgets.PeriodTotal{
				TenantID: b.TenantID, UID: b.UID, Span: span,
			}}
			sums[span.Start] = c
			order = append(order, span.Start)
		}
		c.Spent += cost
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backfilling budget %s: %w", b.ID, err)
	}

	return insertPeriods(ctx, tx, b, sums, order)
}

func insertPeriods(ctx context.Context, tx pgx.Tx, b *budgets.Compiled,
	sums map[time.Time]*Change, order []time.Time) ([]Change, error) {

	if len(order) == 0 {
		return nil, nil
	}
	out := make([]Change, 0, len(order))
	costs := make([]int64, 0, len(order))
	for _, s := range order {
		costs = append(costs, sums[s].Spent)
	}
	rows, err := tx.Query(ctx, insertPeriodsSQL, b.TenantID, b.UID, order, costs)
	if err != nil {
		return nil, fmt.Errorf("storing period spend of budget %s: %w", b.ID, err)
	}
	var (
		start   time.Time
		version int64
	)
	_, err = pgx.ForEachRow(rows, []any{&start, &version}, func() error {
		sums[period.Day(start)].Version = version
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storing period spend of budget %s: %w", b.ID, err)
	}
	for _, s := range order {
		out = append(out, *sums[s])
	}
	return out, nil
}

// matchingTuples returns the ids of the tenant's tuples in b's scope.
func matchingTuples(ctx context.Context, tx pgx.Tx, b *budgets.Compiled) ([][]byte, error) {
	return tuplesMatching(ctx, tx, b.TenantID, &b.Matcher)
}

func tuplesMatching(ctx context.Context, q budgets.Querier, tenant string, m *scope.Matcher) (
	[][]byte, error,
) {
	rows, err := q.Query(ctx, tenantTuplesSQL, tenant)
	if err != nil {
		return nil, fmt.Errorf("reading dimension tuples: %w", err)
	}
	var (
		ids  [][]byte
		id   []byte
		dims []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &dims}, func() error {
		a, err := scope.Decode(dims)
		if err != nil {
			return err
		}
		if m.Match(&a) {
			ids = append(ids, append([]byte(nil), id...))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading dimension tuples: %w", err)
	}
	return ids, nil
}

// Forget deletes the derived spend of a deleted budget.
func Forget(ctx context.Context, tx pgx.Tx, tenant, uid string) error {
	for _, q := range []string{clearBudgetDaysSQL, clearBudgetPeriodsSQL} {
		if _, err := tx.Exec(ctx, q, tenant, uid); err != nil {
			return fmt.Errorf("deleting spend of budget %s: %w", uid, err)
		}
	}
	return nil
}

const scopeHistorySQL = `SELECT day, sum(cost_nanos)::bigint FROM budget.spend_daily
WHERE tenant_id = $1 AND currency = $2 AND day >= $3 AND day < $4 AND tuple_id = ANY($5)
GROUP BY day`

const tenantHistorySQL = `SELECT day, sum(cost_nanos)::bigint FROM budget.spend_daily
WHERE tenant_id = $1 AND currency = $2 AND day >= $3 AND day < $4
GROUP BY day`

// ScopeHistory returns the daily spend in currency on [from, to) of the
// tenant's usage that filters select, with the categories they name, one
// value per day, in nanos.
func ScopeHistory(ctx context.Context, q budgets.Querier, tenant, currency string,
	filters []scope.Filter, cats []scope.Category, from, to time.Time) ([]float64, error) {

	n := int(to.Sub(from).Hours()/24 + 0.5)
	y := make([]float64, n)
	var (
		rows pgx.Rows
		err  error
	)
	if len(filters) == 0 {
		rows, err = q.Query(ctx, tenantHistorySQL, tenant, currency, from, to)
	} else {
		m, cerr := scope.Compile(filters, scope.Env{Categories: cats, Currency: currency})
		if cerr != nil {
			return nil, cerr
		}
		ids, merr := tuplesMatching(ctx, q, tenant, &m)
		if merr != nil || len(ids) == 0 {
			return y, merr
		}
		rows, err = q.Query(ctx, scopeHistorySQL, tenant, currency, from, to, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("reading scope history: %w", err)
	}
	var (
		day  time.Time
		cost int64
	)
	_, err = pgx.ForEachRow(rows, []any{&day, &cost}, func() error {
		if i := int(period.Day(day).Sub(from).Hours()/24 + 0.5); i >= 0 && i < n {
			y[i] = float64(cost)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading scope history: %w", err)
	}
	return y, nil
}
