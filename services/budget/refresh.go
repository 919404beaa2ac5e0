package budget

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
)

// loadState fills the in-memory state before anything is served from it,
// retrying while the database is unreachable.
func (s *Service) loadState(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for {
		err := s.refresh(ctx, true)
		if err == nil {
			s.log.Info("budget state loaded", "budgets", len(s.state.Budgets()),
				"version", s.state.Version())
			return nil
		}
		s.log.Warn("loading budget state failed, will retry", "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// refreshLoop keeps the state in step with writes this member did not
// make: budget writes and spend committed by other members.
func (s *Service) refreshLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.StateRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.refresh(ctx, false); err != nil && ctx.Err() == nil {
			s.log.Warn("refreshing budget state failed", "error", err)
		}
	}
}

const currentTotalsSQL = `SELECT p.budget_uid::text, p.spent_nanos, p.version
FROM budget.budget_periods p
JOIN unnest($1::text[], $2::uuid[], $3::date[]) AS c(t, u, s)
	ON p.tenant_id = c.t AND p.budget_uid = c.u AND p.period_start = c.s`

// refresh reloads the budget set when its version moved (always when
// force) and the totals of every current period.
func (s *Service) refresh(ctx context.Context, force bool) error {
	var v int64
	if err := s.deps.Pool.QueryRow(ctx, `SELECT version FROM budget.budget_set`).Scan(&v); err != nil {
		return fmt.Errorf("reading budget set version: %w", err)
	}
	if force || v != s.state.Version() {
		if err := s.reloadBudgets(ctx); err != nil {
			return err
		}
	}

	now := s.now()
	cur := s.state.Current(now)
	if len(cur) == 0 {
		return nil
	}
	tenants := make([]string, len(cur))
	uids := make([]string, len(cur))
	starts := make([]time.Time, len(cur))
	spans := make(map[string]period.Span, len(cur))
	for i, c := range cur {
		tenants[i], uids[i], starts[i] = c.TenantID, c.UID, c.Span.Start
		spans[c.UID] = c.Span
	}
	rows, err := s.deps.Pool.Query(ctx, currentTotalsSQL, tenants, uids, starts)
	if err != nil {
		return fmt.Errorf("reading period totals: %w", err)
	}
	var (
		totals []budgets.PeriodTotal
		t      budgets.PeriodTotal
	)
	_, err = pgx.ForEachRow(rows, []any{&t.UID, &t.Spent, &t.Version}, func() error {
		t.Span = spans[t.UID]
		totals = append(totals, t)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading period totals: %w", err)
	}
	s.state.ApplyTotals(totals, now)
	return nil
}

// reloadBudgets replaces the state's budget set with the stored one.
func (s *Service) reloadBudgets(ctx context.Context) error {
	bs, v, err := budgets.Snapshot(ctx, s.deps.Pool)
	if err != nil {
		return err
	}
	set, err := budgets.NewSet(bs, v)
	if err != nil {
		return err
	}
	s.state.SetBudgets(set)
	return nil
}

// maintenanceLoop applies retention every interval.
func (s *Service) maintenanceLoop(ctx context.Context) error {
	t := time.NewTicker(s.cfg.MaintenanceEvery)
	defer t.Stop()
	for {
		if err := s.maintain(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("budget maintenance failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Retention statements delete in slices, so that no statement holds many
// row locks for long.
const (
	pruneSeenSQL = `DELETE FROM budget.seen_events WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM budget.seen_events WHERE seen_on < $1 LIMIT 10000))`
	pruneSpendSQL = `DELETE FROM budget.spend_daily WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM budget.spend_daily WHERE day < $1 LIMIT 10000))`
	pruneBudgetDaysSQL = `DELETE FROM budget.budget_daily WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM budget.budget_daily WHERE day < $1 LIMIT 10000))`
	pruneTuplesSQL = `DELETE FROM budget.tuples t WHERE NOT EXISTS (
	SELECT 1 FROM budget.spend_daily s
	WHERE s.tenant_id = t.tenant_id AND s.tuple_id = t.tuple_id)`
	pruneSlice = 10000
)

func (s *Service) maintain(ctx context.Context) error {
	now := s.now()
	steps := []struct {
		sql    string
		before time.Time
	}{
		{pruneSeenSQL, period.Day(now.Add(-s.cfg.DedupWindow))},
		{pruneSpendSQL, period.Day(now.Add(-s.cfg.SpendRetention))},
		{pruneBudgetDaysSQL, period.Day(now.Add(-s.cfg.SpendRetention))},
	}
	var pruned int64
	for _, st := range steps {
		for {
			tag, err := s.deps.Pool.Exec(ctx, st.sql, st.before)
			if err != nil {
				return fmt.Errorf("applying retention: %w", err)
			}
			if st.sql == pruneSpendSQL {
				pruned += tag.RowsAffected()
			}
			if tag.RowsAffected() < pruneSlice {
				break
			}
		}
	}
	if pruned == 0 {
		return nil
	}
	return s.pruneTuples(ctx)
}

// pruneTuples deletes tuples no daily spend refers to any more. It holds
// the budget-set lock exclusively, so no batch is in flight, and bumps the
// tuple epoch, so that every consumer stops believing them stored.
func (s *Service) pruneTuples(ctx context.Context) error {
	return pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := budgets.LockExclusive(ctx, tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, pruneTuplesSQL)
		if err != nil {
			return fmt.Errorf("pruning tuples: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return budgets.BumpTupleEpoch(ctx, tx)
	})
}
