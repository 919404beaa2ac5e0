// Package lead elects one process among the service's instances for a
// job, with a PostgreSQL session advisory lock: the lock lives as long as
// the connection that took it, so a process that dies or loses the
// database loses the lead.
package lead

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Lead is a held lead.
type Lead struct {
	conn *pgxpool.Conn
	key  int64
}

// Key returns the advisory lock key of a job name.
func Key(job string) int64 {
	h := fnv.New64a()
	h.Write([]byte("costplane.anomaly.lead." + job))
	return int64(h.Sum64())
}

// Await blocks until this process leads job, checking every poll, or
// until ctx ends.
func Await(ctx context.Context, pool *pgxpool.Pool, job string, poll time.Duration) (*Lead, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquiring a connection to lead %s: %w", job, err)
	}
	key := Key(job)
	for {
		var ok bool
		err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok)
		if err != nil {
			conn.Release()
			return nil, fmt.Errorf("trying to lead %s: %w", job, err)
		}
		if ok {
			return &Lead{conn: conn, key: key}, nil
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Check fails once the lead is lost with its connection.
func (l *Lead) Check(ctx context.Context) error {
	if _, err := l.conn.Exec(ctx, `SELECT 1`); err != nil {
		return fmt.Errorf("checking the lead: %w", err)
	}
	return nil
}

// Release gives the lead up.
func (l *Lead) Release(ctx context.Context) {
	// A broken connection drops the lock by itself.
	_, _ = l.conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, l.key)
	l.conn.Release()
}
