// Package docs stores the tenant's named definitions, cost categories and
// perspectives, as JSON documents with a revision that guards updates.
package docs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"
)

// Errors of the store.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrRevision means an update named a revision that is not current.
	ErrRevision = errors.New("revision is not current")
)

// Doc is one stored definition.
type Doc struct {
	ID         string
	Body       []byte
	Revision   int64
	CreateTime time.Time
	UpdateTime time.Time
}

// Kind holds the SQL of one table of documents.
type Kind struct {
	insert, get, list, update, delete string
}

// Categories and Perspectives are the two kinds of documents.
var (
	Categories = Kind{
		insert: `INSERT INTO attribution.categories
  (tenant_id, category_id, definition, revision, create_time, update_time)
VALUES ($1, $2, $3, 1, now(), now())
RETURNING category_id, definition, revision, create_time, update_time`,
		get: `SELECT category_id, definition, revision, create_time, update_time
FROM attribution.categories WHERE tenant_id = $1 AND category_id = $2`,
		list: `SELECT category_id, definition, revision, create_time, update_time
FROM attribution.categories WHERE tenant_id = $1 AND category_id > $2
ORDER BY category_id LIMIT $3`,
		update: `UPDATE attribution.categories
SET definition = $3, revision = revision + 1, update_time = now()
WHERE tenant_id = $1 AND category_id = $2 AND ($4 = 0 OR revision = $4)
RETURNING category_id, definition, revision, create_time, update_time`,
		delete: `DELETE FROM attribution.categories WHERE tenant_id = $1 AND category_id = $2`,
	}
	Perspectives = Kind{
		insert: `INSERT INTO attribution.perspectives
  (tenant_id, perspective_id, definition, revision, create_time, update_time)
VALUES ($1, $2, $3, 1, now(), now())
RETURNING perspective_id, definition, revision, create_time, update_time`,
		get: `SELECT perspective_id, definition, revision, create_time, update_time
FROM attribution.perspectives WHERE tenant_id = $1 AND perspective_id = $2`,
		list: `SELECT perspective_id, definition, revision, create_time, update_time
FROM attribution.perspectives WHERE tenant_id = $1 AND perspective_id > $2
ORDER BY perspective_id LIMIT $3`,
		update: `UPDATE attribution.perspectives
SET definition = $3, revision = revision + 1, update_time = now()
WHERE tenant_id = $1 AND perspective_id = $2 AND ($4 = 0 OR revision = $4)
RETURNING perspective_id, definition, revision, create_time, update_time`,
		delete: `DELETE FROM attribution.perspectives
WHERE tenant_id = $1 AND perspective_id = $2`,
	}
)

// Store reads and writes one kind of document.
type Store struct {
	pool *pgxpool.Pool
	kind Kind
}

// NewStore returns a store of kind on pool.
func NewStore(pool *pgxpool.Pool, kind Kind) *Store {
	return &Store{pool: pool, kind: kind}
}

func scanDoc(row pgx.Row) (Doc, error) {
	var d Doc
	err := row.Scan(&d.ID, &d.Body, &d.Revision, &d.CreateTime, &d.UpdateTime)
	return d, err
}

// Create stores a new document.
func (s *Store) Create(ctx context.Context, tenant, id string, body []byte) (Doc, error) {
	d, err := scanDoc(s.pool.QueryRow(ctx, s.kind.insert, tenant, id, body))
	switch {
	case pg.IsUniqueViolation(err):
		return Doc{}, ErrExists
	case err != nil:
		return Doc{}, fmt.Errorf("creating %s: %w", id, err)
	}
	return d, nil
}

// Get returns one document.
func (s *Store) Get(ctx context.Context, tenant, id string) (Doc, error) {
	d, err := scanDoc(s.pool.QueryRow(ctx, s.kind.get, tenant, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return Doc{}, ErrNotFound
	case err != nil:
		return Doc{}, fmt.Errorf("reading %s: %w", id, err)
	}
	return d, nil
}

// List returns up to limit documents whose id sorts after after.
func (s *Store) List(ctx context.Context, tenant, after string, limit int) ([]Doc, error) {
	rows, err := s.pool.Query(ctx, s.kind.list, tenant, after, limit)
	if err != nil {
		return nil, fmt.Errorf("listing: %w", err)
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Doc, error) {
		return scanDoc(r)
	})
	if err != nil {
		return nil, fmt.Errorf("listing: %w", err)
	}
	return docs, nil
}

// Update replaces a document's body. A positive revision must be the
// stored one.
func (s *Store) Update(ctx context.Context, tenant, id string, body []byte, revision int64) (
	Doc, error,
) {
	var d Doc
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		d, err = scanDoc(tx.QueryRow(ctx, s.kind.update, tenant, id, body, revision))
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := scanDoc(tx.QueryRow(ctx, s.kind.get, tenant, id)); err == nil {
			return ErrRevision
		}
		return ErrNotFound
	})
	if err != nil && !errors.Is(err, ErrRevision) && !errors.Is(err, ErrNotFound) {
		return Doc{}, fmt.Errorf("updating %s: %w", id, err)
	}
	return d, err
}

// Delete removes a document.
func (s *Store) Delete(ctx context.Context, tenant, id string) error {
	tag, err := s.pool.Exec(ctx, s.kind.delete, tenant, id)
	if err != nil {
		return fmt.Errorf("deleting %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
