package category

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"

	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution/internal/docs"
)

// Store keeps a tenant's categories. Definitions are stored as the
// protobuf JSON of the API message, whose enum names are stable.
type Store struct {
	pool *pgxpool.Pool
	docs *docs.Store
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, docs: docs.NewStore(pool, docs.Categories)}
}

func encode(c *Category) ([]byte, error) {
	p := c.Proto()
	p.Revision, p.CreateTime, p.UpdateTime = 0, nil, nil
	b, err := protojson.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding category %s: %w", c.ID, err)
	}
	return b, nil
}

func decode(d docs.Doc) (*Category, error) {
	p := &attributionv1.CostCategory{}
	if err := protojson.Unmarshal(d.Body, p); err != nil {
		return nil, fmt.Errorf("decoding category %s: %w", d.ID, err)
	}
	c := FromProto(p)
	c.ID, c.Revision, c.CreateTime, c.UpdateTime = d.ID, d.Revision, d.CreateTime, d.UpdateTime
	return c, nil
}

// Get returns one category, or docs.ErrNotFound.
func (s *Store) Get(ctx context.Context, tenant, id string) (*Category, error) {
	d, err := s.docs.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	return decode(d)
}

// List returns up to limit categories whose id sorts after after.
func (s *Store) List(ctx context.Context, tenant, after string, limit int) ([]*Category, error) {
	ds, err := s.docs.List(ctx, tenant, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*Category, 0, len(ds))
	for _, d := range ds {
		c, err := decode(d)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Create stores a new, validated category.
func (s *Store) Create(ctx context.Context, tenant string, c *Category) (*Category, error) {
	body, err := encode(c)
	if err != nil {
		return nil, err
	}
	d, err := s.docs.Create(ctx, tenant, c.ID, body)
	if err != nil {
		return nil, err
	}
	return decode(d)
}

// Update replaces a validated category; a positive c.Revision must be
// the stored one.
func (s *Store) Update(ctx context.Context, tenant string, c *Category) (*Category, error) {
	body, err := encode(c)
	if err != nil {
		return nil, err
	}
	d, err := s.docs.Update(ctx, tenant, c.ID, body, c.Revision)
	if err != nil {
		return nil, err
	}
	return decode(d)
}

// Delete removes a category.
func (s *Store) Delete(ctx context.Context, tenant, id string) error {
	return s.docs.Delete(ctx, tenant, id)
}

const checkRegexSQL = `SELECT '' ~ $1`

// CheckRegexes asks PostgreSQL, which evaluates them, whether the
// category's regular expressions compile.
func (s *Store) CheckRegexes(ctx context.Context, c *Category) ([]Violation, error) {
	var out []Violation
	for _, re := range c.Regexes() {
		var ok bool
		err := s.pool.QueryRow(ctx, checkRegexSQL, re.Description).Scan(&ok)
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "2201B":
			out = append(out, Violation{re.Field, "is not a valid regular expression: " +
				pgErr.Message})
		case err != nil:
			return nil, fmt.Errorf("checking regular expression: %w", err)
		}
	}
	return out, nil
}
