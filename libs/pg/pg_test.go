package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
)

func testPool(t *testing.T) (context.Context, string, func() int) {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL not set")
	}
	ctx := context.Background()
	pool, err := Connect(ctx, url, 4)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("pgtest_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") //nolint:errcheck
		pool.Close()
	})
	count := func() int {
		var n int
		q := "SELECT count(*) FROM " + schema + ".items"
		if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return ctx, schema, count
}

func TestMigrateAppliesOnceInOrder(t *testing.T) {
	ctx, schema, count := testPool(t)
	pool, err := Connect(ctx, os.Getenv("DATABASE_URL"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	fsys := fstest.MapFS{
		"m/0002_seed.sql":  {Data: []byte("INSERT INTO " + schema + ".items VALUES (1)")},
		"m/0001_items.sql": {Data: []byte("CREATE TABLE " + schema + ".items (id int)")},
	}
	for range 2 {
		if err := Migrate(ctx, pool, schema, fsys, "m"); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("items = %d, want 1: a migration ran twice or not at all", n)
	}
}

func TestMigrateRejectsBadNames(t *testing.T) {
	for _, name := range []string{"m/items.sql", "m/0_items.sql", "m/x1_items.sql"} {
		fsys := fstest.MapFS{name: {Data: []byte("SELECT 1")}}
		if _, err := LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("LoadMigrations accepted %s", name)
		}
	}
	dup := fstest.MapFS{"m/0001_a.sql": {}, "m/0001_b.sql": {}}
	if _, err := LoadMigrations(dup, "m"); err == nil {
		t.Error("LoadMigrations accepted two migrations numbered 1")
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	ctx, schema, count := testPool(t)
	pool, err := Connect(ctx, os.Getenv("DATABASE_URL"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema+"; CREATE TABLE "+schema+
		".items (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	err = InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".items VALUES (1)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx error = %v, want boom", err)
	}
	if n := count(); n != 0 {
		t.Fatalf("items = %d after a failed transaction, want 0", n)
	}

	err = InTx(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO "+schema+".items VALUES (1), (1)")
		return err
	})
	if !IsUniqueViolation(err) {
		t.Fatalf("duplicate insert error = %v, want a unique violation", err)
	}
}
