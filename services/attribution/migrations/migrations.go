// Package migrations holds the numbered SQL migrations of the attribution
// schema, embedded, and applies them.
package migrations

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"
)

// Schema is the PostgreSQL schema the attribution service owns.
const Schema = "attribution"

//go:embed *.sql
var files embed.FS

// Apply creates or upgrades the schema.
func Apply(ctx context.Context, pool *pgxpool.Pool) error {
	return pg.Migrate(ctx, pool, Schema, files, ".")
}
