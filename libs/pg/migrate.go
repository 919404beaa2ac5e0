package pg

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migration is one numbered SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads files named NNNN_description.sql from dir in fsys,
// ordered by number. Numbers must be unique and positive.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}

	var out []Migration
	seen := make(map[int]string)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %q: name must start with a positive number and _", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share number %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()

		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading migration %q: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })

	return out, nil
}

// Migrate applies the migrations in dir of fsys that schema has not seen,
// each in its own transaction. The schema is created when missing, and the
// applied versions are recorded in schema.schema_migrations. An advisory
// lock keyed by the schema name makes concurrent starts safe.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, dir string) error {
	migs, err := LoadMigrations(fsys, dir)
	if err != nil {
		return err
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring connection: %w", err)
	}
	defer conn.Release()

	lock := lockKey(schema)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lock); err != nil {
		return fmt.Errorf("locking migrations of %s: %w", schema, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lock) //nolint:errcheck

	ident := pgx.Identifier{schema}.Sanitize()
	setup := fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`, ident)
	if _, err := conn.Exec(ctx, setup); err != nil {
		return fmt.Errorf("creating migration table of %s: %w", schema, err)
	}

	applied := make(map[int]bool)
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT version FROM %s.schema_migrations`, ident))
	if err != nil {
		return fmt.Errorf("reading applied migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("reading applied migrations: %w", err)
	}
	for _, v := range versions {
		applied[int(v)] = true
	}

	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		err := InTx(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx,
				fmt.Sprintf(`INSERT INTO %s.schema_migrations (version, name) VALUES ($1, $2)`, ident),
				m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("applying migration %s of %s: %w", m.Name, schema, err)
		}
	}

	return nil
}

func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("costplane.migrate." + schema))
	return int64(h.Sum64())
}
