// Package testdb gives tests a PostgreSQL database of their own with the
// auth and attribution schemas in place. Tests are skipped when
// DATABASE_URL is unset.
package testdb

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/auth/authtest"
	"github.com/costplane/costplane/services/attribution/migrations"
)

// New returns a pool on a fresh, migrated database, dropped at the end of
// the test.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := authtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrations.Apply(ctx, pool); err != nil {
		t.Fatalf("migrating attribution: %v", err)
	}
	return pool
}
