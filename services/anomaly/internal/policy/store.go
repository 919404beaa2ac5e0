package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what settings are read and written with.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const getSQL = `SELECT settings, update_time FROM anomaly.settings WHERE tenant_id = $1`

// Get returns the tenant's settings; a tenant that saved none gets the
// zero Settings, which means every default.
func Get(ctx context.Context, db DB, tenant string) (Settings, error) {
	var (
		raw []byte
		s   Settings
		at  time.Time
	)
	err := db.QueryRow(ctx, getSQL, tenant).Scan(&raw, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return Settings{}, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("reading settings: %w", err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return Settings{}, fmt.Errorf("reading settings: %w", err)
	}
	s.UpdateTime = at
	return s, nil
}

const putSQL = `INSERT INTO anomaly.settings (tenant_id, settings, update_time) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings,
	update_time = EXCLUDED.update_time`

// Put replaces the tenant's settings, which must be valid.
func Put(ctx context.Context, db DB, tenant string, s Settings, now time.Time) (Settings, error) {
	s.UpdateTime = time.Time{}
	raw, err := json.Marshal(s)
	if err != nil {
		return Settings{}, fmt.Errorf("encoding settings: %w", err)
	}
	if _, err := db.Exec(ctx, putSQL, tenant, raw, now); err != nil {
		return Settings{}, fmt.Errorf("saving settings: %w", err)
	}
	s.UpdateTime = now
	return s, nil
}

const getManySQL = `SELECT tenant_id, settings FROM anomaly.settings WHERE tenant_id = ANY($1)`

// Cache holds tenants' effective policies for the detectors, reading
// them again after a TTL so that changes made through another process
// arrive. It is safe for concurrent use.
type Cache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cached
}

type cached struct {
	eff    *Effective
	loaded time.Time
}

// NewCache returns an empty cache whose entries live for ttl.
func NewCache(ttl time.Duration) *Cache {
	return &Cache{ttl: ttl, m: make(map[string]cached)}
}

// Prepare loads the tenants that are missing or stale, in one query.
func (c *Cache) Prepare(ctx context.Context, db DB, tenants []string, now time.Time) error {
	var need []string
	c.mu.Lock()
	for _, t := range tenants {
		if e, ok := c.m[t]; !ok || now.Sub(e.loaded) >= c.ttl {
			need = append(need, t)
		}
	}
	c.mu.Unlock()
	if len(need) == 0 {
		return nil
	}

	rows, err := db.Query(ctx, getManySQL, need)
	if err != nil {
		return fmt.Errorf("loading settings: %w", err)
	}
	found := make(map[string]*Effective, len(need))
	var (
		tenant string
		raw    []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&tenant, &raw}, func() error {
		var s Settings
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("settings of %s: %w", tenant, err)
		}
		found[tenant] = s.Effective()
		return nil
	})
	if err != nil {
		return fmt.Errorf("loading settings: %w", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range need {
		e := found[t]
		if e == nil {
			e = Default()
		}
		c.m[t] = cached{eff: e, loaded: now}
	}
	return nil
}

// For returns the tenant's policy; a tenant not prepared gets the
// defaults.
func (c *Cache) For(tenant string) *Effective {
	c.mu.Lock()
	e, ok := c.m[tenant]
	c.mu.Unlock()
	if !ok {
		return defaultEffective
	}
	return e.eff
}

// Set installs a tenant's new settings at once, for the process that
// saved them.
func (c *Cache) Set(tenant string, s Settings, now time.Time) {
	c.mu.Lock()
	c.m[tenant] = cached{eff: s.Effective(), loaded: now}
	c.mu.Unlock()
}

var defaultEffective = Default()
