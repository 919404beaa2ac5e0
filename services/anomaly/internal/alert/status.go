package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/store"
)

// ErrTransition means the anomaly's status does not allow the change.
var ErrTransition = errors.New("status does not allow the change")

const (
	statusOpen     = eventv1.AlertStatus_ALERT_STATUS_OPEN
	statusAcked    = eventv1.AlertStatus_ALERT_STATUS_ACKNOWLEDGED
	statusResolved = eventv1.AlertStatus_ALERT_STATUS_RESOLVED
	statusFalse    = eventv1.AlertStatus_ALERT_STATUS_FALSE_POSITIVE
)

// allowed lists, per target status, the statuses it may be reached from.
var allowed = map[eventv1.AlertStatus][]eventv1.AlertStatus{
	statusAcked:    {statusOpen},
	statusResolved: {statusOpen, statusAcked},
	statusFalse:    {statusOpen, statusAcked, statusResolved},
}

const lockSQL = `SELECT status, kind, suppress_scope, suppress_measure, measure
FROM anomaly.anomalies WHERE tenant_id = $1 AND anomaly_id = $2 FOR UPDATE`

const setStatusSQL = `UPDATE anomaly.anomalies
SET status = $3, note = $4, update_time = $5, revision = revision + 1
WHERE tenant_id = $1 AND anomaly_id = $2
RETURNING ` + columns

// pattern is what a false positive suppresses.
type pattern struct {
	kind    eventv1.AnomalyKind
	scope   map[string]string
	measure string
	value   int64
}

// SetStatus moves an anomaly to status to and queues the new revision. A
// change to the status it already has changes nothing. db must be a
// transaction.
func SetStatus(
	ctx context.Context, db store.DB, tenant, id string, to eventv1.AlertStatus,
	note string, now time.Time,
) (*eventv1.Anomaly, error) {
	a, _, err := setStatus(ctx, db, tenant, id, to, note, now)
	return a, err
}

func setStatus(
	ctx context.Context, db store.DB, tenant, id string, to eventv1.AlertStatus,
	note string, now time.Time,
) (*eventv1.Anomaly, pattern, error) {
	var (
		cur, kind int16
		scopeJSON []byte
		p         pattern
	)
	err := db.QueryRow(ctx, lockSQL, tenant, id).Scan(&cur, &kind, &scopeJSON, &p.measure, &p.value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, p, ErrNotFound
	}
	if err != nil {
		return nil, p, fmt.Errorf("reading anomaly %s: %w", id, err)
	}
	p.kind = eventv1.AnomalyKind(kind)
	if err := json.Unmarshal(scopeJSON, &p.scope); err != nil {
		return nil, p, fmt.Errorf("reading suppression scope of %s: %w", id, err)
	}

	from := eventv1.AlertStatus(cur)
	if from == to {
		a, err := Get(ctx, db, tenant, id)
		return a, p, err
	}
	if !containsStatus(allowed[to], from) {
		return nil, p, fmt.Errorf("%w: %s to %s", ErrTransition, from, to)
	}

	a, err := scanAnomaly(db.QueryRow(ctx, setStatusSQL, tenant, id, int16(to), note, now))
	if err != nil {
		return nil, p, fmt.Errorf("changing status of %s: %w", id, err)
	}
	if err := Enqueue(ctx, db, []*eventv1.Anomaly{a}); err != nil {
		return nil, p, err
	}
	return a, p, nil
}

func containsStatus(ss []eventv1.AlertStatus, s eventv1.AlertStatus) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// Suppression is a pattern that no longer alerts below a limit.
type Suppression struct {
	Tenant     string
	ID         string
	Kind       eventv1.AnomalyKind
	Scope      map[string]string
	Measure    string
	Limit      int64
	AnomalyID  string
	Note       string
	CreateTime time.Time
	ExpireTime time.Time // zero: never
}

// How much worse than a false positive a pattern must be to alert again.
const (
	suppressFactorNum = 2
	suppressTTL       = 30 * 24 * time.Hour
)

// MarkFalsePositive marks the anomaly a false positive and adds (or
// renews) the suppression of its pattern. db must be a transaction.
func MarkFalsePositive(
	ctx context.Context, db store.DB, tenant, id, note string, now time.Time,
) (*eventv1.Anomaly, Suppression, error) {
	a, p, err := setStatus(ctx, db, tenant, id, statusFalse, note, now)
	if err != nil {
		return nil, Suppression{}, err
	}

	s := Suppression{
		Tenant: tenant, ID: suppressionID(id), Kind: p.kind, Scope: p.scope,
		Measure: p.measure, AnomalyID: id, Note: note, CreateTime: now,
	}
	if p.measure != finding.MeasureNone {
		s.Limit = p.value * suppressFactorNum
		s.ExpireTime = now.Add(suppressTTL)
	}
	if err := saveSuppression(ctx, db, s); err != nil {
		return nil, Suppression{}, err
	}
	return a, s, nil
}

func suppressionID(anomalyID string) string {
	sum := sha256.Sum256([]byte("suppression\x00" + anomalyID))
	return "sp_" + hex.EncodeToString(sum[:10])
}

const saveSuppressionSQL = `INSERT INTO anomaly.suppressions (tenant_id, suppression_id, kind,
	scope, measure, limit_value, anomaly_id, note, create_time, expire_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant_id, suppression_id) DO UPDATE SET
	limit_value = EXCLUDED.limit_value, note = EXCLUDED.note,
	create_time = EXCLUDED.create_time, expire_time = EXCLUDED.expire_time`

func saveSuppression(ctx context.Context, db store.DB, s Suppression) error {
	scope, err := json.Marshal(nonNil(s.Scope))
	if err != nil {
		return fmt.Errorf("encoding suppression scope: %w", err)
	}
	var expire *time.Time
	if !s.ExpireTime.IsZero() {
		expire = &s.ExpireTime
	}
	_, err = db.Exec(ctx, saveSuppressionSQL, s.Tenant, s.ID, int16(s.Kind), scope, s.Measure,
		s.Limit, s.AnomalyID, s.Note, s.CreateTime, expire)
	if err != nil {
		return fmt.Errorf("saving suppression: %w", err)
	}
	return nil
}

const suppressionColumns = `tenant_id, suppression_id, kind, scope, measure, limit_value,
	anomaly_id, note, create_time, expire_time`

func scanSuppression(row pgx.CollectableRow) (Suppression, error) {
	var (
		s      Suppression
		kind   int16
		scope  []byte
		expire *time.Time
	)
	err := row.Scan(&s.Tenant, &s.ID, &kind, &scope, &s.Measure, &s.Limit, &s.AnomalyID,
		&s.Note, &s.CreateTime, &expire)
	if err != nil {
		return s, err
	}
	s.Kind = eventv1.AnomalyKind(kind)
	if expire != nil {
		s.ExpireTime = *expire
	}
	return s, json.Unmarshal(scope, &s.Scope)
}

const activeSuppressionsSQL = `SELECT ` + suppressionColumns + ` FROM anomaly.suppressions
WHERE tenant_id = ANY($1) AND (expire_time IS NULL OR expire_time > $2)`

// ActiveSuppressions returns the unexpired suppressions of tenants.
func ActiveSuppressions(
	ctx context.Context, db store.DB, tenants []string, now time.Time,
) ([]Suppression, error) {
	rows, err := db.Query(ctx, activeSuppressionsSQL, tenants, now)
	if err != nil {
		return nil, fmt.Errorf("reading suppressions: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanSuppression)
	if err != nil {
		return nil, fmt.Errorf("reading suppressions: %w", err)
	}
	return out, nil
}

const listSuppressionsSQL = `SELECT ` + suppressionColumns + ` FROM anomaly.suppressions
WHERE tenant_id = $1 AND ($2 = '' OR (create_time, suppression_id) < ($3, $2))
ORDER BY create_time DESC, suppression_id DESC LIMIT $4`

// ListSuppressions returns a page of the tenant's suppressions, newest
// first, after (afterTime, afterID) when afterID is set.
func ListSuppressions(
	ctx context.Context, db store.DB, tenant string, afterTime time.Time, afterID string,
	limit int,
) ([]Suppression, error) {
	rows, err := db.Query(ctx, listSuppressionsSQL, tenant, afterID, afterTime, limit)
	if err != nil {
		return nil, fmt.Errorf("listing suppressions: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanSuppression)
	if err != nil {
		return nil, fmt.Errorf("listing suppressions: %w", err)
	}
	return out, nil
}

// ErrSuppressionNotFound means the tenant has no suppression of that id.
var ErrSuppressionNotFound = errors.New("suppression not found")

const deleteSuppressionSQL = `DELETE FROM anomaly.suppressions
WHERE tenant_id = $1 AND suppression_id = $2`

// DeleteSuppression removes one suppression.
func DeleteSuppression(ctx context.Context, db store.DB, tenant, id string) error {
	tag, err := db.Exec(ctx, deleteSuppressionSQL, tenant, id)
	if err != nil {
		return fmt.Errorf("deleting suppression %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrSuppressionNotFound
	}
	return nil
}

// Suppresses reports whether s keeps finding f quiet at now.
func (s Suppression) Suppresses(f *finding.Finding, now time.Time) bool {
	if s.Kind != f.Kind || s.Measure != f.Suppression.Measure {
		return false
	}
	if !s.ExpireTime.IsZero() && !now.Before(s.ExpireTime) {
		return false
	}
	if !maps.Equal(nonNil(s.Scope), nonNil(f.Suppression.Scope)) {
		return false
	}
	return s.Measure == finding.MeasureNone || f.Measure <= s.Limit
}
