package ingest

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// The rollup columns, in staging order: the counters and totals, then
// quantity, list and effective cost per kind.
var (
	mainColumns = append([]string{
		"events", "requests", "runs", "sessions", "unpriced", "list_nanos", "effective_nanos",
	}, dims.TokenColumns[:]...)
	kindColumns = append(append(append([]string(nil), dims.QuantityColumns...),
		dims.ListColumns...), dims.EffectiveColumns...)
	stageDeltaColumns = append([]string{
		"daily", "tenant_id", "bucket", "dims_id",
		"events", "requests", "runs", "sessions", "unpriced", "list_nanos", "effective_nanos",
	}, kindColumns...)
)

// The rollup upserts read the batch's deltas, which the writer has summed
// per tenant, bucket and dimension set, hourly rows and daily rows apart,
// so that no statement aggregates.
var (
	upsertRollupHourSQL = upsertSQL("rollup_hour", false,
		append(append([]string(nil), mainColumns...), kindColumns[dims.NumTokenKinds:]...))
	upsertRollupDaySQL = upsertSQL("rollup_day", true, mainColumns)
	upsertKindDaySQL   = upsertSQL("rollup_kind_day", true, kindColumns)
)

func upsertSQL(table string, daily bool, cols []string) string {
	adds := make([]string, len(cols))
	for i, c := range cols {
		adds[i] = fmt.Sprintf("%[1]s = r.%[1]s + EXCLUDED.%[1]s", c)
	}
	list := strings.Join(cols, ", ")
	return fmt.Sprintf(`INSERT INTO attribution.%[1]s AS r (tenant_id, bucket, dims_id, %[2]s)
SELECT tenant_id, bucket, dims_id, %[2]s FROM stage_delta WHERE daily = %[3]t
ON CONFLICT (tenant_id, bucket, dims_id) DO UPDATE SET %[4]s`,
		table, list, daily, strings.Join(adds, ", "))
}

// StageDeltaColumns returns the columns of the rollup staging table in
// order: daily, tenant_id, bucket, dims_id, the counters and totals, then
// quantity, list and effective cost per quantity kind.
func StageDeltaColumns() []string {
	return append([]string(nil), stageDeltaColumns...)
}

// UpsertRollupsFrom adds to the rollups the delta rows that query selects,
// in StageDeltaColumns order, through the staging table and upserts the
// consumer uses, so that rows computed in SQL (a backfill, a benchmark's
// seed) land exactly as consumed ones do. Hourly and daily rows are both
// the caller's to select; daily rows of days not rolled up yet are
// dropped, as RollUpDays makes them from the hourly ones.
func UpsertRollupsFrom(ctx context.Context, tx pgx.Tx, query string, args ...any) error {
	if _, err := tx.Exec(ctx, createStagingSQL); err != nil {
		return fmt.Errorf("creating staging tables: %w", err)
	}
	w, err := lockWatermark(ctx, tx)
	if err != nil {
		return err
	}
	insert := "INSERT INTO stage_delta (" + strings.Join(stageDeltaColumns, ", ") + ") " + query
	if _, err := tx.Exec(ctx, insert, args...); err != nil {
		return fmt.Errorf("staging rollup deltas: %w", err)
	}
	late := pgtype.Timestamptz{Time: w, Valid: true}
	if w.IsZero() {
		late.InfinityModifier = pgtype.NegativeInfinity
	}
	if _, err := tx.Exec(ctx, dropLateDeltasSQL, late); err != nil {
		return fmt.Errorf("staging rollup deltas: %w", err)
	}
	if err := upsertRollups(ctx, tx, true); err != nil {
		return fmt.Errorf("upserting rollups: %w", err)
	}
	return nil
}
