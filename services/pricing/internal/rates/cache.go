package rates

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"github.com/costplane/costplane/services/pricing/pricebook"
)

// ErrStale means the cache has not been refreshed for longer than its
// staleness bound, so prices computed from it might ignore a rate change.
var ErrStale = errors.New("tenant rates are stale")

// Cache holds every tenant's live rates in memory for the pricing
// consumer. Reads are lock-free; Run refreshes it when PostgreSQL
// notifies a change and, in case a notification is lost, every poll
// interval.
type Cache struct {
	store    *Store
	log      *slog.Logger
	poll     time.Duration
	maxStale time.Duration
	now      func() time.Time

	snap   atomic.Pointer[snapshot]
	wakeup chan struct{}
}

// snapshot is immutable once published.
type snapshot struct {
	rates    map[string]*pricebook.TenantRates
	revision int64
	// refreshed is when the database last confirmed the snapshot.
	refreshed time.Time
}

// NewCache returns an empty cache; Load fills it.
func NewCache(store *Store, log *slog.Logger, poll, maxStale time.Duration) *Cache {
	return &Cache{
		store: store, log: log, poll: poll, maxStale: maxStale, now: time.Now,
		wakeup: make(chan struct{}, 1),
	}
}

// Load reads every tenant's rates. It must succeed once before Get
// answers anything but nil.
func (c *Cache) Load(ctx context.Context) error {
	all, rev, err := c.store.loadAll(ctx)
	if err != nil {
		return err
	}
	c.snap.Store(&snapshot{rates: all, revision: rev, refreshed: c.now()})
	return nil
}

// Get returns a tenant's rates, or nil when it has none. The result is
// shared and must not be modified.
func (c *Cache) Get(tenantID string) *pricebook.TenantRates {
	s := c.snap.Load()
	if s == nil {
		return nil
	}
	return s.rates[tenantID]
}

// Check reports ErrStale when the last successful refresh is older than
// the staleness bound, or when nothing was ever loaded.
func (c *Cache) Check() error {
	s := c.snap.Load()
	if s == nil {
		return fmt.Errorf("%w: never loaded", ErrStale)
	}
	if age := c.now().Sub(s.refreshed); age > c.maxStale {
		return fmt.Errorf("%w: last refreshed %s ago", ErrStale, age.Round(time.Second))
	}
	return nil
}

// Age returns how long ago the cache was last confirmed current.
func (c *Cache) Age() time.Duration {
	s := c.snap.Load()
	if s == nil {
		return 0
	}
	return c.now().Sub(s.refreshed)
}

// Refresh asks Run to refresh at once, for a writer in this process that
// does not want to wait for the notification.
func (c *Cache) Refresh() {
	select {
	case c.wakeup <- struct{}{}:
	default:
	}
}

// Run listens for change notifications and polls until ctx ends. Load
// must have succeeded first. Failures are logged and retried; Run returns
// nil when ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	go c.listen(ctx)

	ticker := time.NewTicker(c.poll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-c.wakeup:
		}
		if err := c.refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("refreshing tenant rates failed", "error", err)
		}
	}
}

// refresh reloads the tenants changed since the snapshot's revision.
func (c *Cache) refresh(ctx context.Context) error {
	cur := c.snap.Load()
	if cur == nil {
		return c.Load(ctx)
	}
	tenants, rev, err := c.store.changedSince(ctx, cur.revision)
	if err != nil {
		return err
	}

	next := &snapshot{rates: cur.rates, revision: rev, refreshed: c.now()}
	if len(tenants) > 0 {
		next.rates = maps.Clone(cur.rates)
		for _, t := range tenants {
			tr, err := c.store.Load(ctx, t)
			if err != nil {
				return err
			}
			next.rates[t] = tr
		}
		c.log.Info("tenant rates reloaded", "tenants", len(tenants), "revision", rev)
	}
	c.snap.Store(next)
	return nil
}

// listen holds a connection in LISTEN and wakes Run on every
// notification. A broken connection is reopened after a pause; polling
// covers the gap.
func (c *Cache) listen(ctx context.Context) {
	pause := time.Second
	for ctx.Err() == nil {
		err := c.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("listening for rate changes failed; polling meanwhile", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

func (c *Cache) listenOnce(ctx context.Context) error {
	pc, err := c.store.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection: %w", err)
	}
	// The connection leaves the pool: a LISTEN session must not be
	// handed to other users.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))

	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	// A change committed before LISTEN took effect has no notification.
	c.Refresh()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("waiting for a notification: %w", err)
		}
		c.Refresh()
	}
}
