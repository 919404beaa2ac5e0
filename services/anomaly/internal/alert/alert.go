// Package alert stores anomalies and queues their records for Kafka.
//
// A finding becomes an anomaly row keyed by its stable id. Re-detecting
// the same condition updates the row only when it changed materially
// (higher severity, 1.5 times the cost or count, a changed scope), and
// then with the next revision. Every new revision, whether from a
// detector or from a status change over the API, is written to the
// outbox in the same transaction; the publisher moves outbox rows to
// Kafka. So an anomaly is on Kafka only once its transaction committed,
// and a rolled-back batch leaves no trace anywhere.
package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/store"
)

// Headers on anomaly records, so that readers (and the publisher's own
// recovery) can tell records apart without parsing them.
const (
	HeaderAnomalyID = "costplane-anomaly-id"
	HeaderRevision  = "costplane-anomaly-revision"
)

// maxExamples bounds the example runs and sessions kept per anomaly.
const maxExamples = 5

const columns = `tenant_id, anomaly_id, kind, scope, window_start, window_end, actual_nanos,
	expected_nanos, currency, severity, status, count, example_runs, example_sessions,
	summary, detect_time, update_time, revision`

const upsertSQL = `INSERT INTO anomaly.anomalies AS a (tenant_id, anomaly_id, kind, pattern, scope,
	window_start, window_end, actual_nanos, expected_nanos, currency, severity, status, count,
	example_runs, example_sessions, summary, detect_time, update_time, revision,
	suppress_scope, suppress_measure, measure)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13, $14, $15, $16, $16, 1,
	$17, $18, $19)
ON CONFLICT (tenant_id, anomaly_id) DO UPDATE SET
	scope = EXCLUDED.scope,
	window_start = least(a.window_start, EXCLUDED.window_start),
	window_end = greatest(a.window_end, EXCLUDED.window_end),
	actual_nanos = EXCLUDED.actual_nanos,
	expected_nanos = EXCLUDED.expected_nanos,
	severity = greatest(a.severity, EXCLUDED.severity),
	status = CASE WHEN a.status = 3 AND EXCLUDED.severity > a.severity THEN 1 ELSE a.status END,
	count = greatest(a.count, EXCLUDED.count),
	example_runs = (SELECT coalesce(array_agg(DISTINCT x), '{}') FROM (
		SELECT x FROM unnest(a.example_runs || EXCLUDED.example_runs) x LIMIT 5) e),
	example_sessions = (SELECT coalesce(array_agg(DISTINCT x), '{}') FROM (
		SELECT x FROM unnest(a.example_sessions || EXCLUDED.example_sessions) x LIMIT 5) e),
	summary = EXCLUDED.summary,
	update_time = EXCLUDED.update_time,
	revision = a.revision + 1,
	suppress_scope = EXCLUDED.suppress_scope,
	measure = greatest(a.measure, EXCLUDED.measure)
WHERE a.status <> 4 AND (
	EXCLUDED.severity > a.severity
	OR (EXCLUDED.actual_nanos > a.actual_nanos
		AND EXCLUDED.actual_nanos::numeric * 2 >= a.actual_nanos::numeric * 3)
	OR (EXCLUDED.count > a.count AND EXCLUDED.count::numeric * 2 >= a.count::numeric * 3)
	OR EXCLUDED.scope <> a.scope)
RETURNING ` + columns

// Upsert stores findings and queues a record for every anomaly that is
// new or changed materially. It returns those anomalies.
func Upsert(
	ctx context.Context, db store.DB, fs []finding.Finding, now time.Time,
) ([]*eventv1.Anomaly, error) {
	fs = dedupe(fs)
	if len(fs) == 0 {
		return nil, nil
	}

	b := &pgx.Batch{}
	for i := range fs {
		if err := queueUpsert(b, &fs[i], now); err != nil {
			return nil, err
		}
	}
	br := db.SendBatch(ctx, b)
	var changed []*eventv1.Anomaly
	for range fs {
		a, err := scanAnomaly(br.QueryRow())
		if err == pgx.ErrNoRows {
			continue // not a material change
		}
		if err != nil {
			_ = br.Close() // the scan error is the one that matters
			return nil, fmt.Errorf("storing anomalies: %w", err)
		}
		changed = append(changed, a)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("storing anomalies: %w", err)
	}

	if err := Enqueue(ctx, db, changed); err != nil {
		return nil, err
	}
	return changed, nil
}

func queueUpsert(b *pgx.Batch, f *finding.Finding, now time.Time) error {
	scope, err := json.Marshal(nonNil(f.Scope))
	if err != nil {
		return fmt.Errorf("encoding scope: %w", err)
	}
	supp, err := json.Marshal(nonNil(f.Suppression.Scope))
	if err != nil {
		return fmt.Errorf("encoding suppression scope: %w", err)
	}
	b.Queue(upsertSQL, f.Tenant, f.ID(), int16(f.Kind), f.Pattern, scope,
		f.WindowStart, f.WindowEnd, f.Actual, f.Expected, f.Currency, int16(f.Severity),
		f.Count, nonNilSlice(f.Runs), nonNilSlice(f.Sessions), f.Summary, now, supp,
		f.Suppression.Measure, f.Measure)
	return nil
}

// dedupe keeps one finding per anomaly, the last, since one statement
// cannot update a row twice. The highest severity seen wins.
func dedupe(fs []finding.Finding) []finding.Finding {
	idx := make(map[string]int, len(fs))
	out := fs[:0:0]
	for _, f := range fs {
		id := f.ID()
		if i, ok := idx[id]; ok {
			f.Severity = finding.Severe(f.Severity, out[i].Severity)
			out[i] = f
			continue
		}
		idx[id] = len(out)
		out = append(out, f)
	}
	// A stable order locks rows in the same order in every consumer.
	slices.SortStableFunc(out, func(a, b finding.Finding) int {
		return cmpStrings(a.Tenant+"\x00"+a.ID(), b.Tenant+"\x00"+b.ID())
	})
	return out
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	if len(s) > maxExamples {
		return s[:maxExamples]
	}
	return s
}

const enqueueSQL = `INSERT INTO anomaly.outbox (tenant_id, anomaly_id, revision, record_key, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::bytea[])`

// Enqueue writes the records of anomalies to the outbox.
func Enqueue(ctx context.Context, db store.DB, as []*eventv1.Anomaly) error {
	if len(as) == 0 {
		return nil
	}
	n := len(as)
	tenants, ids, revs := make([]string, n), make([]string, n), make([]int64, n)
	keys, payloads := make([][]byte, n), make([][]byte, n)
	for i, a := range as {
		payload, err := protojson.Marshal(a)
		if err != nil {
			return fmt.Errorf("encoding anomaly %s: %w", a.GetAnomalyId(), err)
		}
		tenants[i], ids[i], revs[i] = a.GetTenantId(), a.GetAnomalyId(), a.GetRevision()
		keys[i], payloads[i] = RecordKey(a.GetTenantId(), a.GetAnomalyId()), payload
	}
	if _, err := db.Exec(ctx, enqueueSQL, tenants, ids, revs, keys, payloads); err != nil {
		return fmt.Errorf("queueing %d anomaly records: %w", n, err)
	}
	return nil
}

// RecordKey is the Kafka key of an anomaly's records: tenant and anomaly
// id, so that every revision of one anomaly lands in one partition, in
// order.
func RecordKey(tenant, id string) []byte {
	return []byte(tenant + "/" + id)
}
