// Package spend tracks spend from costplane.usage.priced.v1, exactly once
// in effect: its Handle runs inside the kafka.Runner's transaction, which
// commits the batch's spend, its alerts and the consumed offsets together.
//
// Each batch writes three things. Daily spend by dimension tuple
// (spend_daily) is the store every budget can be computed from, so a
// budget created or changed later is backfilled from it. Daily spend per
// budget (budget_daily) is the forecast's input. Spend per budget period
// (budget_periods) is what thresholds and checks compare with the amount;
// it is written with INSERT ... ON CONFLICT DO UPDATE ... RETURNING, so
// concurrent group members serialize on the row and each learns the exact
// total its batch produced.
package spend

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

// Raiser raises the alerts that new period totals call for, inside the
// batch's transaction, and returns how many it raised.
type Raiser interface {
	Raise(ctx context.Context, tx pgx.Tx, totals []Change, now time.Time) (int, error)
}

// Change is a period total a batch produced, with its budget.
type Change struct {
	Budget *budgets.Compiled
	budgets.PeriodTotal
}

// Committed is what a committed batch changed, for the in-memory state
// and the alert publisher.
type Committed struct {
	Set    *budgets.Set // non-nil when the batch reloaded the budget set
	Totals []budgets.PeriodTotal
	Raised int
	// Late lists the budgets whose spend before today changed, whose
	// forecasts are therefore stale.
	Late []string
}

// Tracker is the consumer's handler. Handle and AfterCommit must be
// called from one goroutine, as kafka.Runner does.
type Tracker struct {
	log    *slog.Logger
	keys   scope.LabelKeys
	raiser Raiser
	now    func() time.Time
	notify func(Committed)

	set    atomic.Pointer[budgets.Set]
	tuples *tupleCache
	// epoch is the tuple epoch the cache is valid for.
	epoch int64

	// staged is what the batch in flight will have changed once it
	// commits; Handle resets it, so a rolled-back batch leaves nothing.
	staged struct {
		Committed
		tuples []tupleKey
	}
}

// Options configure a Tracker.
type Options struct {
	Logger    *slog.Logger
	LabelKeys scope.LabelKeys
	Raiser    Raiser
	// Notify receives what each committed batch changed.
	Notify func(Committed)
	Now    func() time.Time
}

// NewTracker returns a tracker that loads the budget set on its first
// batch.
func NewTracker(o Options) *Tracker {
	t := &Tracker{
		log: o.Logger, keys: o.LabelKeys, raiser: o.Raiser, now: o.Now, notify: o.Notify,
		tuples: newTupleCache(200_000),
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.notify == nil {
		t.notify = func(Committed) {}
	}
	return t
}

// Handle is the kafka.Handler.
func (t *Tracker) Handle(ctx context.Context, tx pgx.Tx, recs []*kgo.Record) (
	[]kafka.Reject, error,
) {
	t.staged.Committed = Committed{}
	t.staged.tuples = t.staged.tuples[:0]

	set, err := t.budgetSet(ctx, tx)
	if err != nil {
		return nil, err
	}

	evs, rejects := decode(recs, t.keys)
	evs, err = firstSeen(ctx, tx, evs, t.now())
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return rejects, nil
	}

	b := aggregate(evs, set)
	t.staged.Late = b.late(t.now())
	if err := t.write(ctx, tx, b); err != nil {
		return nil, err
	}
	changes, err := addPeriods(ctx, tx, b.periods)
	if err != nil {
		return nil, err
	}

	raised, err := t.raiser.Raise(ctx, tx, changes, t.now())
	if err != nil {
		return nil, err
	}
	t.staged.Raised = raised
	for _, c := range changes {
		t.staged.Totals = append(t.staged.Totals, c.PeriodTotal)
	}

	return rejects, nil
}

// AfterCommit publishes what the committed batch changed; the runner
// calls it through kafka.WithOnCommit.
func (t *Tracker) AfterCommit(kafka.Commit) {
	for _, k := range t.staged.tuples {
		t.tuples.add(k)
	}
	c := t.staged.Committed
	t.staged.Committed = Committed{}
	t.staged.tuples = t.staged.tuples[:0]
	if c.Set != nil || len(c.Totals) > 0 || c.Raised > 0 || len(c.Late) > 0 {
		t.notify(c)
	}
}

// budgetSet takes the budget-set lock shared and returns the set as of
// the lock, reloading it when a budget write has changed it.
func (t *Tracker) budgetSet(ctx context.Context, tx pgx.Tx) (*budgets.Set, error) {
	v, epoch, err := budgets.LockShared(ctx, tx)
	if err != nil {
		return nil, err
	}
	if epoch != t.epoch {
		// Tuples were deleted: believe none stored. Safe to do before the
		// batch commits, since forgetting only costs inserts.
		t.tuples.reset()
		t.epoch = epoch
	}
	if s := t.set.Load(); s != nil && s.Version == v {
		return s, nil
	}

	// No budget write can run while the lock is held, so what this
	// reads is the set at version v.
	bs, err := budgets.All(ctx, tx)
	if err != nil {
		return nil, err
	}
	s, err := budgets.NewSet(bs, v)
	if err != nil {
		return nil, err
	}
	t.set.Store(s)
	t.staged.Set = s
	t.log.Info("budget set loaded", "version", v, "budgets", len(bs))
	return s, nil
}

// Forget drops the cached budget set, so the next batch reloads it.
func (t *Tracker) Forget() { t.set.Store(nil) }

const seenSQL = `INSERT INTO budget.seen_events (tenant_id, priced_id, seen_on)
SELECT t, p, $3::date FROM unnest($1::text[], $2::text[]) AS u(t, p)
ON CONFLICT DO NOTHING
RETURNING tenant_id, priced_id`

// firstSeen keeps the events whose ids no earlier batch, and no earlier
// record of this batch, counted.
func firstSeen(ctx context.Context, tx pgx.Tx, evs []event, now time.Time) ([]event, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	tenants := make([]string, len(evs))
	ids := make([]string, len(evs))
	for i, ev := range evs {
		tenants[i], ids[i] = ev.tenant, ev.id
	}
	rows, err := tx.Query(ctx, seenSQL, tenants, ids, now.UTC())
	if err != nil {
		return nil, fmt.Errorf("recording event ids: %w", err)
	}
	type key struct{ tenant, id string }
	fresh := make(map[key]bool, len(evs))
	var k key
	_, err = pgx.ForEachRow(rows, []any{&k.tenant, &k.id}, func() error {
		fresh[k] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording event ids: %w", err)
	}

	out := evs[:0]
	for _, ev := range evs {
		k := key{ev.tenant, ev.id}
		if fresh[k] {
			delete(fresh, k) // a second record with the id is a duplicate
			out = append(out, ev)
		}
	}
	return out, nil
}
