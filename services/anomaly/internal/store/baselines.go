package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/costplane/costplane/services/anomaly/internal/detect"
)

const addBaselinesSQL = `INSERT INTO anomaly.baselines AS b (tenant_id, subject, scope, day, bucket, n)
SELECT * FROM unnest($1::text[], $2::smallint[], $3::text[], $4::integer[], $5::smallint[],
	$6::bigint[])
ON CONFLICT (tenant_id, subject, scope, day, bucket) DO UPDATE SET n = b.n + EXCLUDED.n`

// AddBaselines counts observations into the stored baselines.
func AddBaselines(ctx context.Context, db DB, adds map[detect.Add]uint32) error {
	if len(adds) == 0 {
		return nil
	}
	keys := make([]detect.Add, 0, len(adds))
	for a := range adds {
		keys = append(keys, a)
	}
	slices.SortFunc(keys, func(a, b detect.Add) int {
		if c := cmp2(a.Key.Tenant, b.Key.Tenant, a.Key.Scope, b.Key.Scope); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Key.Subject, b.Key.Subject), cmp.Compare(a.Day, b.Day),
			cmp.Compare(a.Bucket, b.Bucket))
	})

	n := len(keys)
	tenants, scopes := make([]string, n), make([]string, n)
	subjects, buckets := make([]int16, n), make([]int16, n)
	days, counts := make([]int32, n), make([]int64, n)
	for i, a := range keys {
		tenants[i], subjects[i], scopes[i] = a.Key.Tenant, int16(a.Key.Subject), a.Key.Scope
		days[i], buckets[i], counts[i] = a.Day, int16(a.Bucket), int64(adds[a])
	}
	_, err := db.Exec(ctx, addBaselinesSQL, tenants, subjects, scopes, days, buckets, counts)
	if err != nil {
		return fmt.Errorf("adding to baselines: %w", err)
	}
	return nil
}

const loadBaselinesSQL = `SELECT b.tenant_id, b.subject, b.scope, b.day, b.bucket, b.n
FROM anomaly.baselines b
JOIN unnest($1::text[], $2::smallint[], $3::text[]) AS k(t, s, sc)
	ON b.tenant_id = k.t AND b.subject = k.s AND b.scope = k.sc
WHERE b.day > $4`

// LoadBaselines reads the stored histograms of keys for days after
// afterDay into bs.
func LoadBaselines(
	ctx context.Context, db DB, bs *detect.Baselines, keys []detect.Key, afterDay int32,
) error {
	if len(keys) == 0 {
		return nil
	}
	n := len(keys)
	tenants, scopes, subjects := make([]string, n), make([]string, n), make([]int16, n)
	loaded := make(map[detect.Key]map[int32]*[detect.NumBuckets]uint32, n)
	for i, k := range keys {
		tenants[i], subjects[i], scopes[i] = k.Tenant, int16(k.Subject), k.Scope
		loaded[k] = make(map[int32]*[detect.NumBuckets]uint32)
	}

	rows, err := db.Query(ctx, loadBaselinesSQL, tenants, subjects, scopes, afterDay)
	if err != nil {
		return fmt.Errorf("loading baselines: %w", err)
	}
	var (
		k           detect.Key
		subject     int16
		day         int32
		bucket      int16
		count       int64
		tenantScope [2]string
	)
	_, err = pgx.ForEachRow(rows,
		[]any{&tenantScope[0], &subject, &tenantScope[1], &day, &bucket, &count},
		func() error {
			k = detect.Key{Tenant: tenantScope[0], Subject: detect.Subject(subject),
				Scope: tenantScope[1]}
			h := loaded[k][day]
			if h == nil {
				h = new([detect.NumBuckets]uint32)
				loaded[k][day] = h
			}
			h[bucket] = uint32(count)
			return nil
		})
	if err != nil {
		return fmt.Errorf("loading baselines: %w", err)
	}

	now := time.Now()
	for k, perDay := range loaded {
		bs.Replace(k, perDay, now)
	}
	return nil
}

const pruneBaselinesSQL = `DELETE FROM anomaly.baselines WHERE day <= $1`

// PruneBaselines deletes days up to and including day.
func PruneBaselines(ctx context.Context, db DB, day int32) error {
	if _, err := db.Exec(ctx, pruneBaselinesSQL, day); err != nil {
		return fmt.Errorf("pruning baselines: %w", err)
	}
	return nil
}
