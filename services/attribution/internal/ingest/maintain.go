package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"
)

// Retention says how long each part of the store is kept. Zero keeps it
// forever.
type Retention struct {
	// Raw lines, by dropping whole day partitions.
	Raw time.Duration
	// Hourly rollups of days rolled up into daily ones; daily rollups
	// are kept.
	Hourly time.Duration
	// Runs, steps and sessions, by their end.
	Runs time.Duration
}

// Maintainer creates raw line partitions ahead of need, rolls the days
// that are over up into the daily rollups, and applies the retention.
type Maintainer struct {
	pool      *pgxpool.Pool
	retention Retention
	ahead     int
	log       *slog.Logger
}

// NewMaintainer returns a maintainer creating partitions for ahead days
// past today.
func NewMaintainer(pool *pgxpool.Pool, r Retention, ahead int, log *slog.Logger) *Maintainer {
	return &Maintainer{pool: pool, retention: r, ahead: ahead, log: log}
}

// Run maintains at once and then every interval until ctx ends. Failures
// are logged and retried at the next round.
func (m *Maintainer) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := m.Maintain(ctx, time.Now()); err != nil && ctx.Err() == nil {
			m.log.Error("store maintenance failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

const (
	partitionsSQL = `
SELECT to_date(substring(c.relname FROM 7), 'YYYYMMDD')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'attribution.lines'::regclass AND c.relname ~ '^lines_[0-9]{8}$'`
	dropPartitionSQL = `DROP TABLE IF EXISTS attribution.lines_%s`
	expireHourSQL    = `DELETE FROM attribution.rollup_hour
WHERE bucket < least($1, (SELECT rolled_until FROM attribution.rollup_watermark))`
	expireStepsSQL    = `DELETE FROM attribution.steps WHERE end_time < $1`
	expireRunsSQL     = `DELETE FROM attribution.runs WHERE end_time < $1`
	expireSessionsSQL = `DELETE FROM attribution.sessions WHERE end_time < $1`
	expireOutcomesSQL = `DELETE FROM attribution.outcomes WHERE time < $1`
)

// Maintain creates the partitions from yesterday to ahead days past now,
// rolls up the days before today, then drops and deletes what the
// retention expires; hourly rollups only of days rolled up.
func (m *Maintainer) Maintain(ctx context.Context, now time.Time) error {
	today := dayOf(now)
	days := make([]time.Time, 0, m.ahead+2)
	for d := -1; d <= m.ahead; d++ {
		days = append(days, today.AddDate(0, 0, d))
	}
	err := pg.InTx(ctx, m.pool, func(tx pgx.Tx) error {
		return EnsurePartitions(ctx, tx, days)
	})
	if err != nil {
		return err
	}

	if err := RollUpDays(ctx, m.pool, today); err != nil {
		return err
	}
	if err := m.dropPartitions(ctx, today); err != nil {
		return err
	}
	return m.expireRows(ctx, now)
}

func (m *Maintainer) dropPartitions(ctx context.Context, today time.Time) error {
	if m.retention.Raw <= 0 {
		return nil
	}
	cutoff := today.Add(-m.retention.Raw)
	rows, err := m.pool.Query(ctx, partitionsSQL)
	if err != nil {
		return fmt.Errorf("listing partitions: %w", err)
	}
	days, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return fmt.Errorf("listing partitions: %w", err)
	}
	for _, d := range days {
		// A partition holds one day: it goes once the whole day is out.
		if !d.AddDate(0, 0, 1).After(cutoff) {
			name := d.Format("20060102")
			if _, err := m.pool.Exec(ctx, fmt.Sprintf(dropPartitionSQL, name)); err != nil {
				return fmt.Errorf("dropping partition %s: %w", name, err)
			}
			m.log.Info("raw line partition dropped", slog.String("day", d.Format(time.DateOnly)))
		}
	}
	return nil
}

func (m *Maintainer) expireRows(ctx context.Context, now time.Time) error {
	jobs := []struct {
		keep time.Duration
		sql  []string
	}{
		{m.retention.Hourly, []string{expireHourSQL}},
		{m.retention.Runs, []string{
			expireStepsSQL, expireRunsSQL, expireSessionsSQL, expireOutcomesSQL,
		}},
	}
	for _, j := range jobs {
		if j.keep <= 0 {
			continue
		}
		for _, sql := range j.sql {
			if _, err := m.pool.Exec(ctx, sql, now.Add(-j.keep)); err != nil {
				return fmt.Errorf("expiring rows: %w", err)
			}
		}
	}
	return nil
}
