package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"
)

// Daily rollups are rolled up from the hourly ones once a day is over,
// rather than upserted by every batch, which took two of the three rollup
// upserts off the consumer's path. The watermark (migration 0002) splits
// the days: before it, daily rows exist and batches add late lines to
// them as well; from it on, only hourly rows do, until RollUpDays moves
// the watermark past the days it rolls up.
//
// Batches hold a shared advisory lock from reading the watermark to their
// commit, and RollUpDays an exclusive one, so that no batch writes hourly
// rows of a day that is being rolled up without writing its daily rows.
// Hourly rows are complete for every day whatever the watermark, so a
// reader that split a range at an older watermark still reads each day
// once, whole.
const (
	lockWatermarkSharedSQL = `
SELECT pg_advisory_xact_lock_shared('attribution.rollup_watermark'::regclass::oid::int, 0)`
	lockWatermarkSQL = `
SELECT pg_advisory_xact_lock('attribution.rollup_watermark'::regclass::oid::int, 0)`
	watermarkSQL       = `SELECT rolled_until FROM attribution.rollup_watermark`
	moveWatermarkSQL   = `UPDATE attribution.rollup_watermark SET rolled_until = $1`
	dropLateDeltasSQL  = `DELETE FROM stage_delta WHERE daily AND bucket >= $1`
	hourlyRangeFilter  = `FROM attribution.rollup_hour WHERE bucket >= $1 AND bucket < $2`
	rollUpGroupingCols = `tenant_id, date_trunc('day', bucket, 'UTC'), dims_id`
)

// clearDaysSQL deletes the daily rows of the days in [$1, $2) before they
// are rolled up. Batches write none past the watermark; rows that a
// consumer of the version before it wrote while the migration ran would
// count twice, and the hourly rows hold all they hold.
func clearDaysSQL(table string) string {
	return `DELETE FROM attribution.` + table + ` WHERE bucket >= $1 AND bucket < $2`
}

// rollUpSQL inserts the daily rows of the days in [$1, $2) summed from
// the hourly ones.
func rollUpSQL(table string, cols []string) string {
	sums := make([]string, len(cols))
	for i, c := range cols {
		sums[i] = "sum(" + c + ")"
	}
	return fmt.Sprintf(`INSERT INTO attribution.%s (tenant_id, bucket, dims_id, %s)
SELECT %s, %s %s GROUP BY 1, 2, 3`, table, strings.Join(cols, ", "), rollUpGroupingCols,
		strings.Join(sums, ", "), hourlyRangeFilter)
}

var (
	rollUpDaySQL     = rollUpSQL("rollup_day", mainColumns)
	rollUpKindDaySQL = rollUpSQL("rollup_kind_day", kindColumns)
)

// Watermark returns the first day whose daily rollups are not rolled up
// yet; the zero time means none is.
func Watermark(ctx context.Context, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
},
) (time.Time, error) {
	var w pgtype.Timestamptz
	if err := db.QueryRow(ctx, watermarkSQL).Scan(&w); err != nil {
		return time.Time{}, fmt.Errorf("reading the rollup watermark: %w", err)
	}
	if w.InfinityModifier != pgtype.Finite {
		return time.Time{}, nil
	}
	return w.Time.UTC(), nil
}

// lockWatermark takes the batch's shared lock, then reads the watermark,
// in a statement of its own so that it sees a roll-up that committed
// while the lock was awaited.
func lockWatermark(ctx context.Context, tx pgx.Tx) (time.Time, error) {
	if _, err := tx.Exec(ctx, lockWatermarkSharedSQL); err != nil {
		return time.Time{}, fmt.Errorf("locking the rollup watermark: %w", err)
	}
	return Watermark(ctx, tx)
}

// RollUpDays rolls up the daily rollups of every day before until's day
// that is not rolled up yet, and moves the watermark there.
func RollUpDays(ctx context.Context, pool *pgxpool.Pool, until time.Time) error {
	until = dayOf(until)
	return pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockWatermarkSQL); err != nil {
			return fmt.Errorf("locking the rollup watermark: %w", err)
		}
		w, err := Watermark(ctx, tx)
		if err != nil {
			return err
		}
		if !w.IsZero() && !w.Before(until) {
			return nil
		}
		from := pgtype.Timestamptz{Time: w, Valid: true}
		if w.IsZero() {
			from.InfinityModifier = pgtype.NegativeInfinity
		}
		for _, sql := range []string{
			clearDaysSQL("rollup_day"), clearDaysSQL("rollup_kind_day"),
			rollUpDaySQL, rollUpKindDaySQL,
		} {
			if _, err := tx.Exec(ctx, sql, from, until); err != nil {
				return fmt.Errorf("rolling up days: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, moveWatermarkSQL, until); err != nil {
			return fmt.Errorf("moving the rollup watermark: %w", err)
		}
		return nil
	})
}
