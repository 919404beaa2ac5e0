package auth

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"
)

// Schema is the PostgreSQL schema that holds tenants and keys.
const Schema = "auth"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the auth schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pg.Migrate(ctx, pool, Schema, migrations, "migrations"); err != nil {
		return fmt.Errorf("migrating auth schema: %w", err)
	}
	return nil
}

// Store reads and writes tenants and keys. Every query filters by tenant,
// except the lookup of a presented key, whose tenant is not yet known.
type Store struct {
	pool *pgxpool.Pool

	mu       sync.Mutex
	onRevoke []func(keyID string)
}

// NewStore returns a store on pool, whose database Migrate has prepared.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// notifyRevoke registers fn to run after every revocation through s; the
// verifiers built on s use it to drop a revoked key at once.
func (s *Store) notifyRevoke(fn func(keyID string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRevoke = append(s.onRevoke, fn)
}

func (s *Store) revoked(keyID string) {
	s.mu.Lock()
	fns := append([]func(string){}, s.onRevoke...)
	s.mu.Unlock()
	for _, fn := range fns {
		fn(keyID)
	}
}

const insertTenant = `
INSERT INTO auth.tenants (tenant_id, name, operator) VALUES ($1, $2, $3)
RETURNING create_time`

// CreateTenant stores t and returns it with its creation time. It fails
// with ErrTenantExists when the id is taken.
func (s *Store) CreateTenant(ctx context.Context, t Tenant) (Tenant, error) {
	err := s.pool.QueryRow(ctx, insertTenant, t.ID, t.Name, t.Operator).Scan(&t.CreateTime)
	if pg.IsUniqueViolation(err) {
		return Tenant{}, fmt.Errorf("creating tenant %s: %w", t.ID, ErrTenantExists)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("creating tenant %s: %w", t.ID, err)
	}
	return t, nil
}

const selectTenant = `
SELECT tenant_id, name, operator, create_time FROM auth.tenants WHERE tenant_id = $1`

// GetTenant returns the tenant id, or ErrTenantNotFound.
func (s *Store) GetTenant(ctx context.Context, id string) (Tenant, error) {
	rows, _ := s.pool.Query(ctx, selectTenant, id)
	t, err := pgx.CollectExactlyOneRow(rows, scanTenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, fmt.Errorf("reading tenant %s: %w", id, ErrTenantNotFound)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("reading tenant %s: %w", id, err)
	}
	return t, nil
}

const listTenants = `
SELECT tenant_id, name, operator, create_time FROM auth.tenants
WHERE tenant_id > $1 ORDER BY tenant_id LIMIT $2`

// ListTenants returns up to limit tenants whose id sorts after afterID, in
// id order. An empty afterID starts at the beginning.
func (s *Store) ListTenants(ctx context.Context, afterID string, limit int) ([]Tenant, error) {
	rows, _ := s.pool.Query(ctx, listTenants, afterID, limit)
	ts, err := pgx.CollectRows(rows, scanTenant)
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	return ts, nil
}

func scanTenant(row pgx.CollectableRow) (Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Name, &t.Operator, &t.CreateTime)
	return t, err
}

const insertKey = `
INSERT INTO auth.api_keys (key_id, tenant_id, name, scopes, prefix, secret_hash)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING create_time`

// CreateKey issues a key for tenantID and returns it with its token, the
// only time the secret is seen. It fails with ErrTenantNotFound when the
// tenant does not exist.
func (s *Store) CreateKey(ctx context.Context, tenantID, name string, scopes []Scope) (
	Key, string, error,
) {
	id, secret, err := newToken()
	if err != nil {
		return Key{}, "", fmt.Errorf("creating key: %w", err)
	}
	k, err := insertKeyRow(ctx, s.pool, tenantID, name, scopes, id, secret)
	if err != nil {
		return Key{}, "", err
	}
	return k, formatToken(id, secret), nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func insertKeyRow(ctx context.Context, q querier, tenantID, name string, scopes []Scope,
	id, secret string,
) (Key, error) {
	k := Key{ID: id, TenantID: tenantID, Name: name, Scopes: scopes, Prefix: secret[:prefixLen]}
	err := q.QueryRow(ctx, insertKey, id, tenantID, name, scopeStrings(scopes), k.Prefix,
		hashSecret(secret)).Scan(&k.CreateTime)
	if isForeignKeyViolation(err) {
		return Key{}, fmt.Errorf("creating key for tenant %s: %w", tenantID, ErrTenantNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("creating key for tenant %s: %w", tenantID, err)
	}
	return k, nil
}

const keyColumns = `key_id, tenant_id, name, scopes, prefix, create_time, revoke_time`

const listKeys = `
SELECT ` + keyColumns + ` FROM auth.api_keys
WHERE tenant_id = $1
  AND ($2 = '' OR (create_time, key_id) >
      (SELECT create_time, key_id FROM auth.api_keys WHERE tenant_id = $1 AND key_id = $2))
ORDER BY create_time, key_id
LIMIT $3`

// ListKeys returns up to limit keys of tenantID created after the key
// afterKeyID, oldest first. An empty afterKeyID starts at the beginning.
func (s *Store) ListKeys(ctx context.Context, tenantID, afterKeyID string, limit int) (
	[]Key, error,
) {
	rows, _ := s.pool.Query(ctx, listKeys, tenantID, afterKeyID, limit)
	ks, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("listing keys of tenant %s: %w", tenantID, err)
	}
	return ks, nil
}

const selectKey = `
SELECT ` + keyColumns + ` FROM auth.api_keys WHERE tenant_id = $1 AND key_id = $2`

// GetKey returns the key keyID of tenantID, or ErrKeyNotFound.
func (s *Store) GetKey(ctx context.Context, tenantID, keyID string) (Key, error) {
	rows, _ := s.pool.Query(ctx, selectKey, tenantID, keyID)
	k, err := pgx.CollectExactlyOneRow(rows, scanKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, fmt.Errorf("reading key %s: %w", keyID, ErrKeyNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("reading key %s: %w", keyID, err)
	}
	return k, nil
}

const selectKeyTenant = `SELECT tenant_id FROM auth.api_keys WHERE key_id = $1`

// KeyTenant returns the tenant that owns keyID, or ErrKeyNotFound. It is for
// operators, who act on keys of any tenant.
func (s *Store) KeyTenant(ctx context.Context, keyID string) (string, error) {
	var tenantID string
	err := s.pool.QueryRow(ctx, selectKeyTenant, keyID).Scan(&tenantID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("reading key %s: %w", keyID, ErrKeyNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reading key %s: %w", keyID, err)
	}
	return tenantID, nil
}

const revokeKey = `
UPDATE auth.api_keys SET revoke_time = coalesce(revoke_time, now())
WHERE tenant_id = $1 AND key_id = $2
RETURNING ` + keyColumns

// RevokeKey revokes the key keyID of tenantID and returns it. Revoking a
// revoked key changes nothing. Verifiers built on s forget the key at once;
// those of other processes within their cache TTL.
func (s *Store) RevokeKey(ctx context.Context, tenantID, keyID string) (Key, error) {
	rows, _ := s.pool.Query(ctx, revokeKey, tenantID, keyID)
	k, err := pgx.CollectExactlyOneRow(rows, scanKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, fmt.Errorf("revoking key %s: %w", keyID, ErrKeyNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("revoking key %s: %w", keyID, err)
	}
	s.revoked(keyID)
	return k, nil
}

func scanKey(row pgx.CollectableRow) (Key, error) {
	var (
		k       Key
		scopes  []string
		revoked *time.Time
	)
	err := row.Scan(&k.ID, &k.TenantID, &k.Name, &scopes, &k.Prefix, &k.CreateTime, &revoked)
	if err != nil {
		return Key{}, err
	}
	for _, s := range scopes {
		k.Scopes = append(k.Scopes, Scope(s))
	}
	if revoked != nil {
		k.RevokeTime = *revoked
	}
	return k, nil
}

// credential is what verifying a key needs to know about it.
type credential struct {
	principal  Principal
	secretHash []byte
	revoked    bool
}

const selectCredential = `
SELECT k.tenant_id, k.scopes, k.secret_hash, k.revoke_time IS NOT NULL, t.operator
FROM auth.api_keys k JOIN auth.tenants t ON t.tenant_id = k.tenant_id
WHERE k.key_id = $1`

// credential looks a presented key up by id alone: its tenant is what the
// lookup finds out. It fails with ErrKeyNotFound for an unknown id.
func (s *Store) credential(ctx context.Context, keyID string) (credential, error) {
	c := credential{principal: Principal{KeyID: keyID}}
	var scopes []string
	err := s.pool.QueryRow(ctx, selectCredential, keyID).Scan(
		&c.principal.TenantID, &scopes, &c.secretHash, &c.revoked, &c.principal.Operator)
	if errors.Is(err, pgx.ErrNoRows) {
		return credential{}, ErrKeyNotFound
	}
	if err != nil {
		return credential{}, fmt.Errorf("looking up key %s: %w", keyID, err)
	}
	for _, sc := range scopes {
		c.principal.Scopes = append(c.principal.Scopes, Scope(sc))
	}
	return c, nil
}

func scopeStrings(scopes []Scope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
