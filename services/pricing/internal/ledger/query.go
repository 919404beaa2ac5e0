package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	eventv1 "github.com/costplane/costplane/proto/gen/go/costplane/event/v1"
)

// Cursor is a position in a tenant's ledger, ordered by start time then
// event id. The zero EventID sorts before every event of its time.
type Cursor struct {
	Time    time.Time
	EventID string
}

// Querier is a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const rowColumns = `tenant_id, event_id, start_time, record_key, usage, cost`

const lockChunk = `SELECT ` + rowColumns + ` FROM pricing.ledger
WHERE tenant_id = $1 AND start_time >= $2 AND start_time < $3
  AND (start_time, event_id) > ($4, $5)
ORDER BY start_time, event_id
LIMIT $6
FOR UPDATE`

// LockChunk reads and locks up to limit rows of a tenant with start time
// in [from, to) after cursor, in cursor order. The locks hold until tx
// ends, so no other writer moves these rows meanwhile.
func LockChunk(ctx context.Context, tx pgx.Tx, tenantID string, from, to time.Time,
	after Cursor, limit int) ([]Row, error) {
	rows, err := tx.Query(ctx, lockChunk, tenantID, from, to, after.Time, after.EventID, limit)
	if err != nil {
		return nil, fmt.Errorf("reading ledger of tenant %s: %w", tenantID, err)
	}
	out, err := pgx.CollectRows(rows, scanRow)
	if err != nil {
		return nil, fmt.Errorf("reading ledger of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

const scanRange = `SELECT ` + rowColumns + ` FROM pricing.ledger
WHERE tenant_id = $1 AND start_time >= $2 AND start_time < $3
ORDER BY start_time, event_id
LIMIT $4`

// Scan calls fn for up to limit rows of a tenant with start time in
// [from, to), earliest first. It reads without locking.
func Scan(ctx context.Context, q Querier, tenantID string, from, to time.Time, limit int,
	fn func(Row) error) error {
	rows, err := q.Query(ctx, scanRange, tenantID, from, to, limit)
	if err != nil {
		return fmt.Errorf("scanning ledger of tenant %s: %w", tenantID, err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scanning ledger of tenant %s: %w", tenantID, err)
	}
	return nil
}

func scanRow(row pgx.CollectableRow) (Row, error) {
	var (
		r          Row
		usage, raw []byte
	)
	err := row.Scan(&r.TenantID, &r.EventID, &r.StartTime, &r.RecordKey, &usage, &raw)
	if err != nil {
		return Row{}, fmt.Errorf("reading ledger row: %w", err)
	}
	r.StartTime = r.StartTime.UTC()
	r.Usage, r.Priced = &eventv1.UsageEvent{}, &eventv1.PricedUsage{}
	if err := proto.Unmarshal(usage, r.Usage); err != nil {
		return Row{}, fmt.Errorf("%w %s/%s: usage: %w", ErrCorrupt, r.TenantID, r.EventID, err)
	}
	if err := proto.Unmarshal(raw, r.Priced); err != nil {
		return Row{}, fmt.Errorf("%w %s/%s: cost: %w", ErrCorrupt, r.TenantID, r.EventID, err)
	}
	return r, nil
}
