package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/services/anomaly/internal/detect"
)

// Seen is spend on one item in one scope, as stored.
type Seen struct {
	Key      detect.SpendKey
	Currency string
	First    time.Time
	Cost     int64
	Alerted  bool
}

const upsertSpendSQL = `INSERT INTO anomaly.spend_seen AS s
	(tenant_id, scope, item, currency, first_time, cost_nanos)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
	$6::bigint[])
ON CONFLICT (tenant_id, scope, item) DO UPDATE SET
	cost_nanos = s.cost_nanos + CASE WHEN s.currency = EXCLUDED.currency
		THEN EXCLUDED.cost_nanos ELSE 0 END,
	first_time = least(s.first_time, EXCLUDED.first_time)
RETURNING tenant_id, scope, item, currency, first_time, cost_nanos, alerted`

// UpsertSpend adds a batch's spend per scope and item and returns the rows
// as they now stand.
func UpsertSpend(
	ctx context.Context, db DB, deltas map[detect.SpendKey]*detect.SpendDelta,
) ([]Seen, error) {
	if len(deltas) == 0 {
		return nil, nil
	}
	keys := make([]detect.SpendKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b detect.SpendKey) int {
		if c := cmp2(a.Tenant, b.Tenant, a.Scope, b.Scope); c != 0 {
			return c
		}
		return strings.Compare(a.Item, b.Item)
	})

	n := len(keys)
	tenants, scopes, items, curs := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n)
	firsts, costs := make([]time.Time, n), make([]int64, n)
	for i, k := range keys {
		d := deltas[k]
		tenants[i], scopes[i], items[i] = k.Tenant, k.Scope, k.Item
		curs[i], firsts[i], costs[i] = d.Currency, d.First, d.Cost
	}
	rows, err := db.Query(ctx, upsertSpendSQL, tenants, scopes, items, curs, firsts, costs)
	if err != nil {
		return nil, fmt.Errorf("recording spend seen: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Seen, error) {
		var s Seen
		err := row.Scan(&s.Key.Tenant, &s.Key.Scope, &s.Key.Item, &s.Currency, &s.First,
			&s.Cost, &s.Alerted)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("recording spend seen: %w", err)
	}
	return out, nil
}

const markSpendSQL = `UPDATE anomaly.spend_seen s SET alerted = true
FROM unnest($1::text[], $2::text[], $3::text[]) AS d(t, sc, it)
WHERE s.tenant_id = d.t AND s.scope = d.sc AND s.item = d.it`

// MarkSpendAlerted records that new spend on keys was reported.
func MarkSpendAlerted(ctx context.Context, db DB, keys []detect.SpendKey) error {
	if len(keys) == 0 {
		return nil
	}
	n := len(keys)
	tenants, scopes, items := make([]string, n), make([]string, n), make([]string, n)
	for i, k := range keys {
		tenants[i], scopes[i], items[i] = k.Tenant, k.Scope, k.Item
	}
	if _, err := db.Exec(ctx, markSpendSQL, tenants, scopes, items); err != nil {
		return fmt.Errorf("marking new spend reported: %w", err)
	}
	return nil
}

const saveMarksSQL = `INSERT INTO anomaly.watermarks AS w
	(consumer_group, topic, partition, watermark, update_time)
SELECT $1, $2, p, m, $5 FROM unnest($3::integer[], $4::timestamptz[]) AS d(p, m)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
	watermark = greatest(w.watermark, EXCLUDED.watermark), update_time = EXCLUDED.update_time`

// SaveWatermarks records how far in event time partitions have come.
func SaveWatermarks(
	ctx context.Context, db DB, group, topic string, marks map[int32]time.Time, now time.Time,
) error {
	if len(marks) == 0 {
		return nil
	}
	parts := make([]int32, 0, len(marks))
	for p := range marks {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	times := make([]time.Time, len(parts))
	for i, p := range parts {
		times[i] = marks[p]
	}
	if _, err := db.Exec(ctx, saveMarksSQL, group, topic, parts, times, now); err != nil {
		return fmt.Errorf("saving watermarks: %w", err)
	}
	return nil
}

const globalMarkSQL = `SELECT min(watermark), max(watermark) FROM anomaly.watermarks
WHERE update_time >= $1`

// Watermarks returns the lowest and highest watermark of the partitions
// updated since activeSince; zero times when there is none.
func Watermarks(ctx context.Context, db DB, activeSince time.Time) (lo, hi time.Time, err error) {
	var l, h *time.Time
	if err := db.QueryRow(ctx, globalMarkSQL, activeSince).Scan(&l, &h); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("reading watermarks: %w", err)
	}
	if l != nil {
		lo, hi = *l, *h
	}
	return lo, hi, nil
}
