package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/services/anomaly/internal/detect"
)

const addSeriesSQL = `INSERT INTO anomaly.%s AS s
	(tenant_id, series_key, currency, bucket, cost_nanos, events)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::bigint[],
	$6::bigint[])
ON CONFLICT (tenant_id, series_key, currency, bucket) DO UPDATE SET
	cost_nanos = s.cost_nanos + EXCLUDED.cost_nanos, events = s.events + EXCLUDED.events`

// AddSeries adds spend to the 5-minute series and to the hourly ones.
func AddSeries(ctx context.Context, db DB, points map[detect.SeriesPoint]detect.Amount) error {
	if len(points) == 0 {
		return nil
	}
	hourly := make(map[detect.SeriesPoint]detect.Amount, len(points)/4+1)
	for p, a := range points {
		h := p
		h.Bucket = p.Bucket - p.Bucket%3600
		cur := hourly[h]
		cur.Cost += a.Cost
		cur.Events += a.Events
		hourly[h] = cur
	}

	b := &pgx.Batch{}
	queueSeries(b, "series_5m", points)
	queueSeries(b, "series_1h", hourly)
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("adding to %d series points: %w", len(points), err)
	}
	return nil
}

func queueSeries(b *pgx.Batch, table string, points map[detect.SeriesPoint]detect.Amount) {
	keys := make([]detect.SeriesPoint, 0, len(points))
	for p := range points {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b detect.SeriesPoint) int {
		if c := cmp2(a.Tenant, b.Tenant, a.Key, b.Key); c != 0 {
			return c
		}
		if c := strings.Compare(a.Currency, b.Currency); c != 0 {
			return c
		}
		return cmp.Compare(a.Bucket, b.Bucket)
	})

	n := len(keys)
	tenants, series, curs := make([]string, n), make([]string, n), make([]string, n)
	buckets, costs, events := make([]time.Time, n), make([]int64, n), make([]int64, n)
	for i, p := range keys {
		a := points[p]
		tenants[i], series[i], curs[i] = p.Tenant, p.Key, p.Currency
		buckets[i], costs[i], events[i] = time.Unix(p.Bucket, 0), a.Cost, a.Events
	}
	b.Queue(fmt.Sprintf(addSeriesSQL, table), tenants, series, curs, buckets, costs, events)
}

// Point is one stored series bucket.
type Point struct {
	Tenant   string
	Key      string
	Currency string
	Bucket   time.Time
	Cost     int64
}

const readSeriesSQL = `SELECT tenant_id, series_key, currency, bucket, cost_nanos
FROM anomaly.%s WHERE bucket >= $1 AND bucket < $2`

// ReadSeries returns every point of the 5-minute ("5m") or hourly ("1h")
// series in [from, to), for every tenant.
func ReadSeries(ctx context.Context, db DB, resolution string, from, to time.Time) ([]Point, error) {
	table := "series_5m"
	if resolution == "1h" {
		table = "series_1h"
	}
	rows, err := db.Query(ctx, fmt.Sprintf(readSeriesSQL, table), from, to)
	if err != nil {
		return nil, fmt.Errorf("reading %s series: %w", resolution, err)
	}
	var (
		out []Point
		p   Point
	)
	_, err = pgx.ForEachRow(rows, []any{&p.Tenant, &p.Key, &p.Currency, &p.Bucket, &p.Cost},
		func() error {
			out = append(out, p)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("reading %s series: %w", resolution, err)
	}
	return out, nil
}

const firstSeriesSQL = `SELECT min(bucket) FROM anomaly.series_5m`

// FirstBucket returns the earliest 5-minute bucket stored, or zero.
func FirstBucket(ctx context.Context, db DB) (time.Time, error) {
	var t *time.Time
	if err := db.QueryRow(ctx, firstSeriesSQL).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("reading the first series bucket: %w", err)
	}
	if t == nil {
		return time.Time{}, nil
	}
	return *t, nil
}

const pruneSeriesSQL = `DELETE FROM anomaly.%s WHERE bucket < $1`

// PruneSeries deletes buckets older than before5m (5-minute) and
// before1h (hourly).
func PruneSeries(ctx context.Context, db DB, before5m, before1h time.Time) error {
	if _, err := db.Exec(ctx, fmt.Sprintf(pruneSeriesSQL, "series_5m"), before5m); err != nil {
		return fmt.Errorf("pruning 5-minute series: %w", err)
	}
	if _, err := db.Exec(ctx, fmt.Sprintf(pruneSeriesSQL, "series_1h"), before1h); err != nil {
		return fmt.Errorf("pruning hourly series: %w", err)
	}
	return nil
}
