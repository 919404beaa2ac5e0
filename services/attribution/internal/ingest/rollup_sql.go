package ingest

import (
	"fmt"
	"strings"

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
