// Package projector keeps every budget's forecast outlook current: it
// refits each budget's daily spend on a schedule and whenever a budget
// changes, stores the outlook in the live state, and raises the forecast
// thresholds the new outlook crosses.
package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"
	"github.com/costplane/costplane/services/budget/internal/budgets"
	"github.com/costplane/costplane/services/budget/internal/forecast"
	"github.com/costplane/costplane/services/budget/internal/live"
	"github.com/costplane/costplane/services/budget/internal/period"
	"github.com/costplane/costplane/services/budget/internal/spend"
)

// Projector refits outlooks.
type Projector struct {
	db          *pgxpool.Pool
	state       *live.State
	raiser      spend.Raiser
	historyDays int
	interval    time.Duration
	now         func() time.Time
	log         *slog.Logger
	onRaised    func()

	wake chan string

	mu    sync.Mutex
	stale map[string]bool // uids whose history changed since their fit
}

// Options configure a Projector.
type Options struct {
	HistoryDays int
	Interval    time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
	// OnRaised is called after a transaction raised alerts.
	OnRaised func()
}

// New returns a projector over state.
func New(db *pgxpool.Pool, state *live.State, raiser spend.Raiser, o Options) *Projector {
	return &Projector{db: db, state: state, raiser: raiser, historyDays: o.HistoryDays,
		interval: o.Interval, now: o.Now, log: o.Logger, onRaised: o.OnRaised,
		wake: make(chan string, 1024), stale: make(map[string]bool)}
}

// MarkStale notes that budget uid's past spend changed (late or corrected
// usage); such budgets are refitted together a tenth of the interval
// later, so that a burst of late usage costs one fit per budget.
func (p *Projector) MarkStale(uids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range uids {
		p.stale[u] = true
	}
}

func (p *Projector) takeStale() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.stale
	p.stale = make(map[string]bool)
	return out
}

// Refresh asks for budget uid's outlook to be refitted soon; it never
// blocks, and a full queue waits for the next scheduled pass.
func (p *Projector) Refresh(uid string) {
	select {
	case p.wake <- uid:
	default:
	}
}

// Run refits every budget now and every interval, and single budgets on
// Refresh, until ctx ends.
func (p *Projector) Run(ctx context.Context) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	stale := time.NewTicker(p.interval / 10)
	defer stale.Stop()
	p.all(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.takeStale()
			p.all(ctx)
		case <-stale.C:
			for uid := range p.takeStale() {
				p.one(ctx, uid)
			}
		case uid := <-p.wake:
			p.one(ctx, uid)
		}
	}
}

func (p *Projector) all(ctx context.Context) {
	for _, b := range p.state.Budgets() {
		if ctx.Err() != nil {
			return
		}
		if err := p.Project(ctx, b); err != nil && ctx.Err() == nil {
			p.log.Warn("forecasting budget failed", "budget_id", b.ID, "error", err)
		}
	}
}

func (p *Projector) one(ctx context.Context, uid string) {
	for _, b := range p.state.Budgets() {
		if b.UID != uid {
			continue
		}
		if err := p.Project(ctx, b); err != nil && ctx.Err() == nil {
			p.log.Warn("forecasting budget failed", "budget_id", b.ID, "error", err)
		}
	}
}

const historySQL = `SELECT day, cost_nanos FROM budget.budget_daily
WHERE tenant_id = $1 AND budget_uid = $2 AND day >= $3 AND day < $4`

// Project refits one budget's outlook for its current period and raises
// the forecast thresholds it crosses.
func (p *Projector) Project(ctx context.Context, b *budgets.Compiled) error {
	now := p.now()
	span, ok := b.Period.At(now)
	if !ok {
		return nil // the budget has not started
	}
	today := period.Day(now)
	y, err := History(ctx, p.db, b, today.AddDate(0, 0, -p.historyDays), today)
	if err != nil {
		return err
	}

	m := forecast.Fit(y)
	days := int(span.End.Sub(today).Hours()/24 + 0.5)
	pts := m.Forecast(days)
	o := &live.Outlook{Span: span, Method: m.Method(), Computed: now, First: today,
		Mean: make([]float64, len(pts))}
	for i, pt := range pts {
		o.Mean[i] = pt.Mean
	}
	_, o.SumLow, o.SumHigh = m.SumInterval(days)
	p.state.SetOutlook(b.UID, o)

	if hasForecastThreshold(b) {
		return p.raise(ctx, b, span, now)
	}
	return nil
}

// History returns b's daily spend on [from, to), one value per day, in
// nanos.
func History(ctx context.Context, db budgets.Querier, b *budgets.Compiled, from, to time.Time) (
	[]float64, error,
) {
	n := int(to.Sub(from).Hours()/24 + 0.5)
	y := make([]float64, n)
	rows, err := db.Query(ctx, historySQL, b.TenantID, b.UID, from, to)
	if err != nil {
		return nil, fmt.Errorf("reading spend history of budget %s: %w", b.ID, err)
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
		return nil, fmt.Errorf("reading spend history of budget %s: %w", b.ID, err)
	}
	return y, nil
}

func hasForecastThreshold(b *budgets.Compiled) bool {
	for _, t := range b.Thresholds {
		if t.Kind == budgets.Forecast {
			return true
		}
	}
	return false
}

const periodSQL = `SELECT spent_nanos, version FROM budget.budget_periods
WHERE tenant_id = $1 AND budget_uid = $2 AND period_start = $3`

// raise evaluates b's thresholds against the period total as committed,
// in a transaction of its own; alert rows are unique, so racing a
// consumer batch that raises the same alert is harmless.
func (p *Projector) raise(ctx context.Context, b *budgets.Compiled, span period.Span,
	now time.Time) error {
	var raised int
	err := pg.InTx(ctx, p.db, func(tx pgx.Tx) error {
		c := spend.Change{Budget: b, PeriodTotal: budgets.PeriodTotal{
			TenantID: b.TenantID, UID: b.UID, Span: span,
		}}
		err := tx.QueryRow(ctx, periodSQL, b.TenantID, b.UID, span.Start).
			Scan(&c.Spent, &c.Version)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("reading period spend of budget %s: %w", b.ID, err)
		}
		raised, err = p.raiser.Raise(ctx, tx, []spend.Change{c}, now)
		return err
	})
	if err == nil && raised > 0 && p.onRaised != nil {
		p.onRaised()
	}
	return err
}
