package alert

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/costplane/costplane/services/anomaly/internal/finding"
	"github.com/costplane/costplane/services/anomaly/internal/policy"
	"github.com/costplane/costplane/services/anomaly/internal/store"
)

// Gate drops findings that a tenant muted or suppressed. It caches
// suppressions for a while and is safe for concurrent use.
type Gate struct {
	policies *policy.Cache
	ttl      time.Duration
	dropped  *prometheus.CounterVec

	mu sync.Mutex
	m  map[string]cachedSuppressions
}

type cachedSuppressions struct {
	list   []Suppression
	loaded time.Time
}

// NewGate returns a gate over policies that reads suppressions again
// after ttl; dropped counts findings by kind and reason and may be nil.
func NewGate(policies *policy.Cache, ttl time.Duration, dropped *prometheus.CounterVec) *Gate {
	return &Gate{policies: policies, ttl: ttl, dropped: dropped, m: map[string]cachedSuppressions{}}
}

// Forget makes the gate read a tenant's suppressions again.
func (g *Gate) Forget(tenant string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, tenant)
}

// Keep returns the findings that are neither muted nor suppressed.
func (g *Gate) Keep(
	ctx context.Context, db store.DB, fs []finding.Finding, now time.Time,
) ([]finding.Finding, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	if err := g.load(ctx, db, fs, now); err != nil {
		return nil, err
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	kept := fs[:0:0]
	for i := range fs {
		f := &fs[i]
		switch {
		case g.policies.For(f.Tenant).Muted(int32(f.Kind), f.Scope, now):
			g.drop(f, "muted")
		case g.suppressed(f, now):
			g.drop(f, "suppressed")
		default:
			kept = append(kept, *f)
		}
	}
	return kept, nil
}

func (g *Gate) drop(f *finding.Finding, reason string) {
	if g.dropped != nil {
		g.dropped.WithLabelValues(finding.KindLabel(f.Kind), reason).Inc()
	}
}

func (g *Gate) suppressed(f *finding.Finding, now time.Time) bool {
	for _, s := range g.m[f.Tenant].list {
		if s.Suppresses(f, now) {
			return true
		}
	}
	return false
}

func (g *Gate) load(ctx context.Context, db store.DB, fs []finding.Finding, now time.Time) error {
	g.mu.Lock()
	var need []string
	for _, f := range fs {
		c, ok := g.m[f.Tenant]
		if (!ok || now.Sub(c.loaded) >= g.ttl) && !slices.Contains(need, f.Tenant) {
			need = append(need, f.Tenant)
		}
	}
	g.mu.Unlock()
	if len(need) == 0 {
		return nil
	}

	list, err := ActiveSuppressions(ctx, db, need, now)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range need {
		g.m[t] = cachedSuppressions{loaded: now}
	}
	for _, s := range list {
		c := g.m[s.Tenant]
		c.list = append(c.list, s)
		g.m[s.Tenant] = c
	}
	return nil
}
