package spend

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

type tupleKey struct {
	tenant string
	id     scope.TupleID
}

type spendKey struct {
	tenant   string
	day      time.Time
	tuple    scope.TupleID
	currency string
}

type budgetDayKey struct {
	tenant string
	uid    string
	day    time.Time
}

type periodKey struct {
	tenant string
	uid    string
	start  time.Time
}

type periodDelta struct {
	budget *budgets.Compiled
	span   period.Span
	cost   int64
}

// batch is a batch's new events summed by the keys of each table.
type batch struct {
	tuples  map[tupleKey][]byte
	spend   map[spendKey]int64
	days    map[budgetDayKey]int64
	periods map[periodKey]*periodDelta
}

// aggregate sums evs per tuple and day, and per matching budget and day
// and period. A budget counts spend in its own currency only.
func aggregate(evs []event, set *budgets.Set) *batch {
	b := &batch{
		tuples:  make(map[tupleKey][]byte),
		spend:   make(map[spendKey]int64),
		days:    make(map[budgetDayKey]int64),
		periods: make(map[periodKey]*periodDelta),
	}
	for i := range evs {
		ev := &evs[i]
		dims, id := ev.attrs.Encode()
		b.tuples[tupleKey{ev.tenant, id}] = dims
		b.spend[spendKey{ev.tenant, ev.day, id, ev.currency}] += ev.cost

		for _, bud := range set.ByTenant[ev.tenant] {
			if bud.Currency != ev.currency || !bud.Matcher.Match(&ev.attrs) {
				continue
			}
			b.days[budgetDayKey{ev.tenant, bud.UID, ev.day}] += ev.cost
			b.addPeriod(bud, ev)
		}
	}
	return b
}

// late returns the budgets with spend on days before now's.
func (b *batch) late(now time.Time) []string {
	today := period.Day(now)
	seen := make(map[string]bool)
	var out []string
	for k := range b.days {
		if k.day.Before(today) && !seen[k.uid] {
			seen[k.uid] = true
			out = append(out, k.uid)
		}
	}
	return out
}

// addPeriod adds ev to its period of bud, unless the period began before
// the budget tracks periods: such late spend is forecast history only.
func (b *batch) addPeriod(bud *budgets.Compiled, ev *event) {
	span, ok := bud.Period.At(ev.day)
	if !ok || span.Start.Before(bud.TrackedFrom) {
		return
	}
	k := periodKey{ev.tenant, bud.UID, span.Start}
	d := b.periods[k]
	if d == nil {
		d = &periodDelta{budget: bud, span: span}
		b.periods[k] = d
	}
	d.cost += ev.cost
}

const (
	insertTuplesSQL = `INSERT INTO budget.tuples (tenant_id, tuple_id, dims)
SELECT * FROM unnest($1::text[], $2::bytea[], $3::jsonb[])
ON CONFLICT DO NOTHING`

	addSpendSQL = `INSERT INTO budget.spend_daily AS s (tenant_id, day, tuple_id, currency, cost_nanos)
SELECT * FROM unnest($1::text[], $2::date[], $3::bytea[], $4::text[], $5::int8[])
ON CONFLICT (tenant_id, day, tuple_id, currency)
DO UPDATE SET cost_nanos = s.cost_nanos + EXCLUDED.cost_nanos`

	addBudgetDaysSQL = `INSERT INTO budget.budget_daily AS d (tenant_id, budget_uid, day, cost_nanos)
SELECT * FROM unnest($1::text[], $2::uuid[], $3::date[], $4::int8[])
ON CONFLICT (tenant_id, budget_uid, day)
DO UPDATE SET cost_nanos = d.cost_nanos + EXCLUDED.cost_nanos`

	addPeriodsSQL = `INSERT INTO budget.budget_periods AS p
	(tenant_id, budget_uid, period_start, spent_nanos, version)
SELECT t, u, s, c, nextval('budget.period_version')
FROM unnest($1::text[], $2::uuid[], $3::date[], $4::int8[]) AS x(t, u, s, c)
ON CONFLICT (tenant_id, budget_uid, period_start)
DO UPDATE SET spent_nanos = p.spent_nanos + EXCLUDED.spent_nanos,
	version = nextval('budget.period_version')
RETURNING tenant_id, budget_uid::text, period_start, spent_nanos, version`
)

// write stores the tuples the cache does not know, and adds to the daily
// tables. Rows go in key order, so that members writing the same rows
// lock them in the same order and cannot deadlock each other.
func (t *Tracker) write(ctx context.Context, tx pgx.Tx, b *batch) error {
	if err := t.writeTuples(ctx, tx, b.tuples); err != nil {
		return err
	}

	keys := sortedKeys(b.spend, func(a, c spendKey) int {
		return cmp.Or(strings.Compare(a.tenant, c.tenant), a.day.Compare(c.day),
			bytes.Compare(a.tuple[:], c.tuple[:]), strings.Compare(a.currency, c.currency))
	})
	var (
		tenants, currencies []string
		days                []time.Time
		tuples              [][]byte
		costs               []int64
	)
	for _, k := range keys {
		tenants = append(tenants, k.tenant)
		days = append(days, k.day)
		tuples = append(tuples, k.tuple[:])
		currencies = append(currencies, k.currency)
		costs = append(costs, b.spend[k])
	}
	if _, err := tx.Exec(ctx, addSpendSQL, tenants, days, tuples, currencies, costs); err != nil {
		return fmt.Errorf("adding daily spend: %w", err)
	}

	return addBudgetDays(ctx, tx, b.days)
}

func (t *Tracker) writeTuples(ctx context.Context, tx pgx.Tx, all map[tupleKey][]byte) error {
	var (
		tenants []string
		ids     [][]byte
		dims    []string
	)
	for _, k := range sortedKeys(all, compareTuple) {
		if t.tuples.has(k) {
			continue
		}
		tenants = append(tenants, k.tenant)
		ids = append(ids, k.id[:])
		dims = append(dims, string(all[k]))
		t.staged.tuples = append(t.staged.tuples, k)
	}
	if len(tenants) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, insertTuplesSQL, tenants, ids, dims); err != nil {
		return fmt.Errorf("storing dimension tuples: %w", err)
	}
	return nil
}

func compareTuple(a, b tupleKey) int {
	return cmp.Or(strings.Compare(a.tenant, b.tenant), bytes.Compare(a.id[:], b.id[:]))
}

func addBudgetDays(ctx context.Context, tx pgx.Tx, days map[budgetDayKey]int64) error {
	if len(days) == 0 {
		return nil
	}
	var (
		tenants, uids []string
		ds            []time.Time
		costs         []int64
	)
	for _, k := range sortedKeys(days, func(a, b budgetDayKey) int {
		return cmp.Or(strings.Compare(a.tenant, b.tenant), strings.Compare(a.uid, b.uid),
			a.day.Compare(b.day))
	}) {
		tenants = append(tenants, k.tenant)
		uids = append(uids, k.uid)
		ds = append(ds, k.day)
		costs = append(costs, days[k])
	}
	if _, err := tx.Exec(ctx, addBudgetDaysSQL, tenants, uids, ds, costs); err != nil {
		return fmt.Errorf("adding budget daily spend: %w", err)
	}
	return nil
}

// addPeriods adds the batch's spend to its budget periods and returns the
// totals the rows now hold, which include what other members committed.
func addPeriods(ctx context.Context, tx pgx.Tx, periods map[periodKey]*periodDelta) (
	[]Change, error,
) {
	if len(periods) == 0 {
		return nil, nil
	}
	keys := sortedKeys(periods, func(a, b periodKey) int {
		return cmp.Or(strings.Compare(a.tenant, b.tenant), strings.Compare(a.uid, b.uid),
			a.start.Compare(b.start))
	})
	var (
		tenants, uids []string
		starts        []time.Time
		costs         []int64
	)
	for _, k := range keys {
		tenants = append(tenants, k.tenant)
		uids = append(uids, k.uid)
		starts = append(starts, k.start)
		costs = append(costs, periods[k].cost)
	}

	rows, err := tx.Query(ctx, addPeriodsSQL, tenants, uids, starts, costs)
	if err != nil {
		return nil, fmt.Errorf("adding period spend: %w", err)
	}
	var (
		out []Change
		pt  budgets.PeriodTotal
		day time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&pt.TenantID, &pt.UID, &day, &pt.Spent, &pt.Version},
		func() error {
			d := periods[periodKey{pt.TenantID, pt.UID, period.Day(day)}]
			if d == nil {
				return fmt.Errorf("period %s of budget %s came back unasked", day, pt.UID)
			}
			pt.Span = d.span
			out = append(out, Change{Budget: d.budget, PeriodTotal: pt})
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("adding period spend: %w", err)
	}
	return out, nil
}

func sortedKeys[K comparable, V any](m map[K]V, cmpFn func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmpFn)
	return keys
}

// tupleCache remembers tuples known to be stored, so that a batch writes
// only new ones. It forgets everything when full, which costs a few
// redundant inserts and nothing else.
type tupleCache struct {
	max  int
	seen map[tupleKey]struct{}
}

func newTupleCache(max int) *tupleCache {
	return &tupleCache{max: max, seen: make(map[tupleKey]struct{})}
}

func (c *tupleCache) has(k tupleKey) bool {
	_, ok := c.seen[k]
	return ok
}

func (c *tupleCache) reset() { clear(c.seen) }

func (c *tupleCache) add(k tupleKey) {
	if len(c.seen) >= c.max {
		clear(c.seen)
	}
	c.seen[k] = struct{}{}
}
