// Package testdb gives tests a PostgreSQL database of their own with the
// auth and anomaly schemas in place. Tests that use it are skipped when
// DATABASE_URL is unset.
package testdb

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/auth/authtest"
	"github.com/costplane/costplane/libs/pg"
)

// New returns a pool on a fresh, migrated database that is dropped when
// the test ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := authtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Migrate(ctx, pool); err != nil {
		t.Fatalf("migrating the anomaly schema: %v", err)
	}
	return pool
}

// Migrate applies the service's migrations, read from the source tree so
// that packages inside the service can use them without importing it.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	return pg.Migrate(ctx, pool, "anomaly", os.DirFS(root), "migrations")
}
