// Package authtest gives tests a PostgreSQL database of their own with the
// auth schema in place, so that tests run in parallel without sharing rows.
package authtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/auth"
)

// DatabaseURLEnv names the variable holding the server to test against.
const DatabaseURLEnv = "DATABASE_URL"

// NewDatabase creates an empty database on the server that DATABASE_URL
// names, migrates the auth schema into it and drops it when the test ends.
// The test is skipped when DATABASE_URL is unset.
func NewDatabase(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := os.Getenv(DatabaseURLEnv)
	if url == "" {
		t.Skip(DatabaseURLEnv + " is not set; skipping a test that needs PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	name := "test_auth_" + randomHex(t, 8)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", DatabaseURLEnv, err)
	}
	defer admin.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	// template0 is never connected to, so parallel creations cannot collide.
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(t, url, ident) })

	pool := connect(ctx, t, url, name)
	if err := auth.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	return pool
}

// NewStore returns a store on a fresh database, as NewDatabase makes.
func NewStore(t testing.TB) (*auth.Store, *pgxpool.Pool) {
	t.Helper()
	pool := NewDatabase(t)
	return auth.NewStore(pool), pool
}

func connect(ctx context.Context, t testing.TB, url, database string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parsing %s: %v", DatabaseURLEnv, err)
	}
	cfg.ConnConfig.Database = database
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting to %s: %v", database, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func dropDatabase(t testing.TB, url, ident string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("connecting to drop test database: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		t.Errorf("dropping test database: %v", err)
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("drawing a database name: %v", err)
	}
	return hex.EncodeToString(b)
}
