package budget

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	budgetv1 "github.com/costplane/costplane/proto/gen/go/costplane/budget/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/spend"
)

// CreateBudget stores a budget and backfills its spend.
func (s *Service) CreateBudget(ctx context.Context, req *budgetv1.CreateBudgetRequest) (
	*budgetv1.CreateBudgetResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	b, err := s.parseBudget(ctx, t, req.GetBudget(), true)
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetBudget().GetBudgetId())
	}

	now := s.now().Truncate(time.Microsecond) // as PostgreSQL keeps it
	b.UID = newUUID()
	b.Revision = 1
	b.Created, b.Updated = now, now
	b.TrackedFrom = trackedFrom(b.Period, now)
	err = s.write(ctx, b.UID, func(tx pgx.Tx) (*budgets.Compiled, error) {
		if err := budgets.Insert(ctx, tx, b); err != nil {
			return nil, err
		}
		return budgets.Compile(b)
	})
	if err != nil {
		return nil, s.toStatus(ctx, err, b.ID)
	}
	s.log.Info("budget created", "tenant_id", t, "budget_id", b.ID)
	return &budgetv1.CreateBudgetResponse{Budget: budgetProto(b)}, nil
}

// UpdateBudget replaces a budget's definition and recomputes its spend.
func (s *Service) UpdateBudget(ctx context.Context, req *budgetv1.UpdateBudgetRequest) (
	*budgetv1.UpdateBudgetResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	b, err := s.parseBudget(ctx, t, req.GetBudget(), false)
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetBudget().GetBudgetId())
	}

	want := req.GetBudget().GetRevision()
	now := s.now().Truncate(time.Microsecond)
	var uid string
	err = s.writeLocked(ctx, func(tx pgx.Tx) (*budgets.Compiled, error) {
		old, err := budgets.GetForUpdate(ctx, tx, t, b.ID)
		if err != nil {
			return nil, err
		}
		if want != 0 && want != old.Revision {
			return nil, budgets.ErrRevision
		}
		b.UID, b.Created, b.Updated, uid = old.UID, old.Created, now, old.UID
		b.TrackedFrom = old.TrackedFrom
		if b.Period != old.Period {
			b.TrackedFrom = trackedFrom(b.Period, now)
		}
		if err := budgets.Update(ctx, tx, b); err != nil {
			return nil, err
		}
		return budgets.Compile(b)
	})
	if err != nil {
		return nil, s.toStatus(ctx, err, b.ID)
	}
	s.projector.Refresh(uid)
	s.log.Info("budget updated", "tenant_id", t, "budget_id", b.ID, "revision", b.Revision)
	return &budgetv1.UpdateBudgetResponse{Budget: budgetProto(b)}, nil
}

// DeleteBudget removes a budget and its derived spend.
func (s *Service) DeleteBudget(ctx context.Context, req *budgetv1.DeleteBudgetRequest) (
	*budgetv1.DeleteBudgetResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	id := req.GetBudgetId()
	err = pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := budgets.LockExclusive(ctx, tx); err != nil {
			return err
		}
		b, err := budgets.Delete(ctx, tx, t, id)
		if err != nil {
			return err
		}
		if err := spend.Forget(ctx, tx, t, b.UID); err != nil {
			return err
		}
		_, err = budgets.BumpVersion(ctx, tx)
		return err
	})
	if err != nil {
		return nil, s.toStatus(ctx, err, id)
	}
	s.afterWrite(ctx, nil)
	s.log.Info("budget deleted", "tenant_id", t, "budget_id", id)
	return &budgetv1.DeleteBudgetResponse{}, nil
}

// GetBudget returns one budget.
func (s *Service) GetBudget(ctx context.Context, req *budgetv1.GetBudgetRequest) (
	*budgetv1.GetBudgetResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	b, err := budgets.Get(ctx, s.deps.Pool, t, req.GetBudgetId())
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetBudgetId())
	}
	return &budgetv1.GetBudgetResponse{Budget: budgetProto(b)}, nil
}

// ListBudgets lists the tenant's budgets in id order.
func (s *Service) ListBudgets(ctx context.Context, req *budgetv1.ListBudgetsRequest) (
	*budgetv1.ListBudgetsResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	pos, err := decodeToken(req.GetPageToken(), "budgets", 1)
	if err != nil {
		return nil, err
	}
	after := ""
	if pos != nil {
		after = pos[0]
	}

	bs, err := budgets.List(ctx, s.deps.Pool, t, after, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}
	resp := &budgetv1.ListBudgetsResponse{}
	if len(bs) > size {
		bs = bs[:size]
		resp.NextPageToken = encodeToken("budgets", bs[size-1].ID)
	}
	for _, b := range bs {
		resp.Budgets = append(resp.Budgets, budgetProto(b))
	}
	return resp, nil
}

// write runs a budget creation under the exclusive budget-set lock and
// refits the new budget's forecast.
func (s *Service) write(ctx context.Context, uid string,
	fn func(tx pgx.Tx) (*budgets.Compiled, error)) error {
	if err := s.writeLocked(ctx, fn); err != nil {
		return err
	}
	s.projector.Refresh(uid)
	return nil
}

// writeLocked runs fn, which stores a budget and returns it, under the
// exclusive budget-set lock; then it backfills the budget's spend, raises
// the actual thresholds that spend already crossed and marks the budget
// set changed, all in the same transaction. After the commit the live
// state takes the change at once.
func (s *Service) writeLocked(ctx context.Context,
	fn func(tx pgx.Tx) (*budgets.Compiled, error)) error {
	now := s.now()
	var (
		changes []spend.Change
		raised  int
	)
	err := pg.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		if err := budgets.LockExclusive(ctx, tx); err != nil {
			return err
		}
		b, err := fn(tx)
		if err != nil {
			return err
		}
		historyFrom := period.Day(now).AddDate(0, 0, -s.cfg.HistoryDays)
		if changes, err = spend.Backfill(ctx, tx, b, historyFrom); err != nil {
			return err
		}
		if raised, err = s.raiser.Raise(ctx, tx, changes, now); err != nil {
			return err
		}
		_, err = budgets.BumpVersion(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}

	s.afterWrite(ctx, changes)
	if raised > 0 {
		s.metrics.raised.Add(float64(raised))
		s.publisher.Notify()
	}
	return nil
}

// afterWrite brings the live state up to a committed budget write. A
// failure leaves it to the refresh loop, a few seconds later.
func (s *Service) afterWrite(ctx context.Context, changes []spend.Change) {
	if err := s.reloadBudgets(ctx); err != nil {
		s.log.Warn("reloading budgets after a write failed", "error", err)
		return
	}
	totals := make([]budgets.PeriodTotal, 0, len(changes))
	for _, c := range changes {
		totals = append(totals, c.PeriodTotal)
	}
	s.state.ApplyTotals(totals, s.now())
}

// trackedFrom is where a budget's period totals start: its current
// period, or its first when it has not started.
func trackedFrom(spec period.Spec, now time.Time) time.Time {
	if span, ok := spec.At(now); ok {
		return span.Start
	}
	return spec.Start
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand never fails on supported platforms
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// requireID checks a budget id named in a request.
func requireID(id string) error {
	if !budgetIDPattern.MatchString(id) {
		return apierr.Invalid("budget_id", "not a budget id")
	}
	return nil
}
