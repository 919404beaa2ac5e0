package spike

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/services/anomaly/internal/detect"
	"github.com/costplane/costplane/services/anomaly/internal/store"
)

// loadRecent reads the 5-minute spend the boundaries up to to need.
func (e *Evaluator) loadRecent(ctx context.Context, to time.Time) error {
	from := e.done.Add(step5m).Add(-e.cfg.Window)
	if e.recentTo.After(from) {
		from = e.recentTo
	}
	if !from.Before(to) {
		return nil
	}
	points, err := store.ReadSeries(ctx, e.pool, "5m", from, to)
	if err != nil {
		return err
	}
	for _, p := range points {
		id := seriesID{Tenant: p.Tenant, Key: p.Key, Currency: p.Currency}
		m := e.recent[id]
		if m == nil {
			m = make(map[int64]int64)
			e.recent[id] = m
		}
		m[p.Bucket.Unix()] = p.Cost
	}
	e.recentTo = to
	return nil
}

// forget drops the 5-minute spend no later boundary needs.
func (e *Evaluator) forget() {
	keep := e.done.Add(step5m).Add(-e.cfg.Window).Unix()
	for id, m := range e.recent {
		for t := range m {
			if t < keep {
				delete(m, t)
			}
		}
		if len(m) == 0 {
			delete(e.recent, id)
		}
	}
}

// historyHours is how much hourly history the model reads: its weeks,
// plus the week before them for the level it scales by.
func (e *Evaluator) historyHours() int { return (e.cfg.Weeks + 1) * hoursPerWeek }

// loadHistory reads the hourly spend of the hours before upTo.
func (e *Evaluator) loadHistory(ctx context.Context, upTo time.Time) error {
	if e.histStart.IsZero() {
		e.histStart = upTo.Add(-time.Duration(e.historyHours()) * time.Hour)
	}
	from := e.histStart.Add(time.Duration(e.histLen) * time.Hour)
	if !from.Before(upTo) {
		return nil
	}
	points, err := store.ReadSeries(ctx, e.pool, "1h", from, upTo)
	if err != nil {
		return err
	}

	grow := int(upTo.Sub(from) / time.Hour)
	for _, s := range e.hist {
		s.Grow(grow)
	}
	e.histLen += grow
	for _, p := range points {
		id := seriesID{Tenant: p.Tenant, Key: p.Key, Currency: p.Currency}
		s := e.hist[id]
		if s == nil {
			s = NewSeries(e.histStart, e.histLen)
			e.hist[id] = s
		}
		s.Spend(int(p.Bucket.Sub(e.histStart)/time.Hour), p.Cost)
	}

	// Trim a week at a time, so that trimming stays rare.
	if excess := e.histLen - e.historyHours(); excess >= hoursPerWeek {
		for id, s := range e.hist {
			s.Trim(excess)
			if s.Hist.First >= len(s.Hist.Vals) && e.recent[id] == nil {
				delete(e.hist, id)
			}
		}
		e.histStart = e.histStart.Add(time.Duration(excess) * time.Hour)
		e.histLen -= excess
	}
	return nil
}

const saveEpisodeSQL = `INSERT INTO anomaly.spike_episodes (tenant_id, series_key, currency,
	anomaly_id, start_time, last_anomalous) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id, series_key, currency) DO UPDATE SET anomaly_id = EXCLUDED.anomaly_id,
	start_time = EXCLUDED.start_time, last_anomalous = EXCLUDED.last_anomalous`

const deleteEpisodeSQL = `DELETE FROM anomaly.spike_episodes
WHERE tenant_id = $1 AND series_key = $2 AND currency = $3`

func (e *Evaluator) saveEpisodes(ctx context.Context, tx pgx.Tx) error {
	b := &pgx.Batch{}
	for id, ep := range e.episodes {
		if !ep.dirty {
			continue
		}
		if ep.closed {
			b.Queue(deleteEpisodeSQL, id.Tenant, id.Key, id.Currency)
			continue
		}
		b.Queue(saveEpisodeSQL, id.Tenant, id.Key, id.Currency, ep.anomalyID, ep.start,
			ep.lastAnomalous)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("saving spike episodes: %w", err)
	}
	for id, ep := range e.episodes {
		ep.dirty = false
		if ep.closed {
			delete(e.episodes, id)
		}
	}
	return nil
}

const saveStateSQL = `INSERT INTO anomaly.evaluator (name, evaluated_to) VALUES ('spike', $1)
ON CONFLICT (name) DO UPDATE SET evaluated_to = EXCLUDED.evaluated_to`

func saveState(ctx context.Context, tx pgx.Tx, to time.Time) error {
	if _, err := tx.Exec(ctx, saveStateSQL, to); err != nil {
		return fmt.Errorf("saving evaluator state: %w", err)
	}
	return nil
}

// pruneEvery is how often, in wall time, old series and baselines go.
const pruneEvery = time.Hour

// prune applies retention behind the evaluated time, so that a lagging
// evaluator never loses data it has yet to judge.
func (e *Evaluator) prune(ctx context.Context) error {
	if time.Since(e.pruned) < pruneEvery || e.done.IsZero() {
		return nil
	}
	if err := store.PruneSeries(ctx, e.pool, e.done.Add(-e.cfg.Retention5m),
		e.done.Add(-e.cfg.Retention1h)); err != nil {
		return err
	}
	day := detect.Day(e.done) - int32(e.cfg.BaselineDays) - 2
	if err := store.PruneBaselines(ctx, e.pool, day); err != nil {
		return err
	}
	e.pruned = time.Now()
	return nil
}
