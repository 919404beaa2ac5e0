// Package store reads and writes the detectors' state in PostgreSQL:
// open runs and sessions, spend series, baselines, spend seen and
// partition watermarks. Writes take the caller's transaction, so that
// they commit together with the consumed offsets; multi-row writes are
// one statement over arrays, sorted so that concurrent consumers lock
// rows in the same order.
package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/detect"
)

// DB is what the store needs: a transaction, a connection or a pool.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

const loadRunsSQL = `SELECT tenant_id, run_key, partition, state FROM anomaly.runs
WHERE partition = ANY($1)`

// LoadRuns returns the open runs stored for partitions, and how many
// entries each partition's run log holds since its latest snapshot.
func LoadRuns(
	ctx context.Context, db DB, partitions []int32,
) (map[int32][]*detect.Run, map[int32]int, error) {
	byPart, err := loadLegacyRuns(ctx, db, partitions)
	if err != nil {
		return nil, nil, err
	}
	entries, err := loadRunLog(ctx, db, partitions, byPart)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[int32][]*detect.Run, len(byPart))
	for p, runs := range byPart {
		for _, r := range runs {
			out[p] = append(out[p], r)
		}
	}
	return out, entries, nil
}

// loadLegacyRuns reads the runs stored one a row, before the run log.
func loadLegacyRuns(
	ctx context.Context, db DB, partitions []int32,
) (map[int32]map[detect.RunKey]*detect.Run, error) {
	rows, err := db.Query(ctx, loadRunsSQL, partitions)
	if err != nil {
		return nil, fmt.Errorf("loading runs: %w", err)
	}
	out := make(map[int32]map[detect.RunKey]*detect.Run, len(partitions))
	var (
		tenant, key string
		part        int32
		state       []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&tenant, &key, &part, &state}, func() error {
		r, err := detect.DecodeRun(tenant, key, part, state)
		if err != nil {
			return fmt.Errorf("run %s/%s: %w", tenant, key, err)
		}
		if out[part] == nil {
			out[part] = make(map[detect.RunKey]*detect.Run)
		}
		out[part][detect.RunKey{Tenant: tenant, Run: key}] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading runs: %w", err)
	}
	return out, nil
}

const upsertSessionsSQL = `WITH up AS (INSERT INTO anomaly.sessions AS s
	(tenant_id, session_id, currency, cost_nanos, agent, app, first_time, last_time)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
	$7::timestamptz[], $8::timestamptz[])
ON CONFLICT (tenant_id, session_id) DO UPDATE SET
	currency = CASE WHEN s.currency = '' THEN EXCLUDED.currency ELSE s.currency END,
	cost_nanos = s.cost_nanos + CASE
		WHEN s.currency = '' OR s.currency = EXCLUDED.currency THEN EXCLUDED.cost_nanos
		ELSE 0 END,
	agent = CASE WHEN EXCLUDED.agent <> '' THEN EXCLUDED.agent ELSE s.agent END,
	app = CASE WHEN s.app = '' THEN EXCLUDED.app ELSE s.app END,
	first_time = least(s.first_time, EXCLUDED.first_time),
	last_time = greatest(s.last_time, EXCLUDED.last_time)
RETURNING tenant_id, session_id, currency, cost_nanos, agent, app, first_time, last_time,
	alert_severity, alert_actual)
SELECT up.* FROM up JOIN unnest($9::text[], $10::bigint[]) AS f(tenant_id, floor)
	ON up.tenant_id = f.tenant_id
WHERE up.cost_nanos >= f.floor`

// UpsertSessions adds a batch's spend to its sessions and returns those
// that cost at least their tenant's floor as they now stand, with the
// spend of every other consumer included. Sessions below it cannot be
// runaways, and returning every session cost as much as updating it.
func UpsertSessions(
	ctx context.Context, db DB, deltas map[detect.SessionKey]*detect.SessionDelta,
	floor func(tenant string) int64,
) ([]detect.Session, error) {
	if len(deltas) == 0 {
		return nil, nil
	}
	keys := make([]detect.SessionKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b detect.SessionKey) int {
		return cmp2(a.Tenant, b.Tenant, a.Session, b.Session)
	})

	n := len(keys)
	var (
		tenants, ids, curs = make([]string, n), make([]string, n), make([]string, n)
		agents, apps       = make([]string, n), make([]string, n)
		costs              = make([]int64, n)
		firsts, lasts      = make([]time.Time, n), make([]time.Time, n)
	)
	var floorTenants []string
	var floors []int64
	for i, k := range keys {
		if i == 0 || k.Tenant != keys[i-1].Tenant {
			floorTenants = append(floorTenants, k.Tenant)
			floors = append(floors, floor(k.Tenant))
		}
		d := deltas[k]
		tenants[i], ids[i], curs[i], costs[i] = k.Tenant, k.Session, d.Currency, d.Cost
		agents[i], apps[i], firsts[i], lasts[i] = d.Agent, d.App, d.First, d.Last
	}
	rows, err := db.Query(ctx, upsertSessionsSQL,
		tenants, ids, curs, costs, agents, apps, firsts, lasts, floorTenants, floors)
	if err != nil {
		return nil, fmt.Errorf("updating %d sessions: %w", n, err)
	}
	out, err := pgx.CollectRows(rows, scanSession)
	if err != nil {
		return nil, fmt.Errorf("updating %d sessions: %w", n, err)
	}
	return out, nil
}

func scanSession(row pgx.CollectableRow) (detect.Session, error) {
	var (
		s   detect.Session
		sev int16
	)
	err := row.Scan(&s.Tenant, &s.ID, &s.Currency, &s.Cost, &s.Agent, &s.App,
		&s.First, &s.Last, &sev, &s.AlertActual)
	s.AlertSeverity = eventv1.Severity(sev)
	return s, err
}

const markSessionsSQL = `UPDATE anomaly.sessions s
SET alert_severity = greatest(s.alert_severity, d.sev), alert_actual = d.actual
FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bigint[]) AS d(t, id, sev, actual)
WHERE s.tenant_id = d.t AND s.session_id = d.id`

// MarkSessionAlerts records the runaway findings reported for sessions.
func MarkSessionAlerts(ctx context.Context, db DB, ss []detect.Session) error {
	if len(ss) == 0 {
		return nil
	}
	n := len(ss)
	tenants, ids := make([]string, n), make([]string, n)
	sevs, actuals := make([]int16, n), make([]int64, n)
	for i, s := range ss {
		tenants[i], ids[i] = s.Tenant, s.ID
		sevs[i], actuals[i] = int16(s.AlertSeverity), s.AlertActual
	}
	if _, err := db.Exec(ctx, markSessionsSQL, tenants, ids, sevs, actuals); err != nil {
		return fmt.Errorf("marking session alerts: %w", err)
	}
	return nil
}

const sweepSessionsSQL = `DELETE FROM anomaly.sessions WHERE last_time < $1
RETURNING tenant_id, session_id, currency, cost_nanos, agent, app, first_time, last_time,
	alert_severity, alert_actual`

// SweepSessions removes the sessions idle since before and returns them.
func SweepSessions(ctx context.Context, db DB, before time.Time) ([]detect.Session, error) {
	rows, err := db.Query(ctx, sweepSessionsSQL, before)
	if err != nil {
		return nil, fmt.Errorf("closing idle sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanSession)
	if err != nil {
		return nil, fmt.Errorf("closing idle sessions: %w", err)
	}
	return out, nil
}

func cmp2(a1, b1, a2, b2 string) int {
	if c := strings.Compare(a1, b1); c != 0 {
		return c
	}
	return strings.Compare(a2, b2)
}
