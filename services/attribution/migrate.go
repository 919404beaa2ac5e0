package attribution

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/services/attribution/migrations"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = migrations.Schema

// Migrate creates or upgrades the attribution schema. Run it before New's
// service serves or consumes.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return migrations.Apply(ctx, pool)
}
