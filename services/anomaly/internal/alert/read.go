package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
	"github.com/costplane/costplane/services/anomaly/internal/store"
)

// ErrNotFound means the tenant has no anomaly of that id.
var ErrNotFound = errors.New("anomaly not found")

func scanAnomaly(row pgx.Row) (*eventv1.Anomaly, error) {
	var (
		a                       eventv1.Anomaly
		kind, severity, status  int16
		scope                   []byte
		wStart, wEnd            time.Time
		actual, expected, count int64
		currency                string
		detect, update          time.Time
	)
	// TODO: Anomaly has no field for the loop count, so subscribers read
	// it from the summary only; adding `count` to the proto would carry
	// it. It is stored, and drives materiality, already.
	err := row.Scan(&a.TenantId, &a.AnomalyId, &kind, &scope, &wStart, &wEnd, &actual,
		&expected, &currency, &severity, &status, &count, &a.ExampleRunIds,
		&a.ExampleSessionIds, &a.Summary, &detect, &update, &a.Revision)
	if err != nil {
		return nil, err
	}
	dims := map[string]string{}
	if err := json.Unmarshal(scope, &dims); err != nil {
		return nil, fmt.Errorf("reading scope of %s: %w", a.AnomalyId, err)
	}

	a.Kind = eventv1.AnomalyKind(kind)
	a.Severity = eventv1.Severity(severity)
	a.Status = eventv1.AlertStatus(status)
	a.Scope = &eventv1.Scope{Dimensions: dims}
	a.WindowStart, a.WindowEnd = timestamppb.New(wStart), timestamppb.New(wEnd)
	a.Actual = &eventv1.Money{CurrencyCode: currency, Nanos: actual}
	a.Expected = &eventv1.Money{CurrencyCode: currency, Nanos: expected}
	a.DetectTime, a.UpdateTime = timestamppb.New(detect), timestamppb.New(update)
	return &a, nil
}

const getSQL = `SELECT ` + columns + ` FROM anomaly.anomalies
WHERE tenant_id = $1 AND anomaly_id = $2`

// Get returns one anomaly of tenant.
func Get(ctx context.Context, db store.DB, tenant, id string) (*eventv1.Anomaly, error) {
	a, err := scanAnomaly(db.QueryRow(ctx, getSQL, tenant, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading anomaly %s: %w", id, err)
	}
	return a, nil
}

// Filter selects anomalies of one tenant.
type Filter struct {
	Kinds       []int16
	Statuses    []int16
	MinSeverity int16
	// Scope must be contained in the anomaly's scope.
	Scope map[string]string
	// From and To bound the detection time; zero means open.
	From, To time.Time
	// After continues a listing after this (detect time, id).
	AfterTime time.Time
	AfterID   string
	Limit     int
}

// List returns the tenant's anomalies matching f, most recently detected
// first.
func List(ctx context.Context, db store.DB, tenant string, f Filter) ([]*eventv1.Anomaly, error) {
	var (
		where = []string{"tenant_id = $1"}
		args  = []any{tenant}
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if len(f.Kinds) > 0 {
		add("kind = ANY($%d)", f.Kinds)
	}
	if len(f.Statuses) > 0 {
		add("status = ANY($%d)", f.Statuses)
	}
	if f.MinSeverity > 0 {
		add("severity >= $%d", f.MinSeverity)
	}
	if len(f.Scope) > 0 {
		b, err := json.Marshal(f.Scope)
		if err != nil {
			return nil, fmt.Errorf("encoding scope filter: %w", err)
		}
		add("scope @> $%d", b)
	}
	if !f.From.IsZero() {
		add("detect_time >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("detect_time < $%d", f.To)
	}
	if f.AfterID != "" {
		args = append(args, f.AfterTime, f.AfterID)
		where = append(where, fmt.Sprintf("(detect_time, anomaly_id) < ($%d, $%d)",
			len(args)-1, len(args)))
	}
	args = append(args, f.Limit)
	sql := fmt.Sprintf(`SELECT %s FROM anomaly.anomalies WHERE %s
ORDER BY detect_time DESC, anomaly_id DESC LIMIT $%d`,
		columns, strings.Join(where, " AND "), len(args))

	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("listing anomalies: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*eventv1.Anomaly, error) {
		return scanAnomaly(row)
	})
	if err != nil {
		return nil, fmt.Errorf("listing anomalies: %w", err)
	}
	return out, nil
}
