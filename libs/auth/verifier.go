package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Config holds the settings of key verification.
type Config struct {
	// CacheTTL is how long a verified key is trusted without asking the
	// database, and so how late another process sees a revocation.
	CacheTTL time.Duration `env:"AUTH_CACHE_TTL" default:"5s" help:"key cache lifetime"`
	// KeyHeader may carry an API key instead of "authorization: Bearer",
	// for clients that can only set a plain header.
	KeyHeader string `env:"AUTH_KEY_HEADER" default:"x-costplane-key" help:"API key header"`
}

// MaxCacheTTL is the longest CacheTTL Validate accepts.
const MaxCacheTTL = time.Minute

// Validate checks that the settings can work.
func (c Config) Validate() error {
	var errs []error
	if c.CacheTTL < 0 || c.CacheTTL > MaxCacheTTL {
		errs = append(errs, fmt.Errorf("AUTH_CACHE_TTL must be between 0 and %s", MaxCacheTTL))
	}
	if !validHeaderName(c.KeyHeader) {
		errs = append(errs, errors.New(
			"AUTH_KEY_HEADER must be a lower-case header name other than authorization"))
	}
	return errors.Join(errs...)
}

// maxCached bounds the cache, which callers fill with the ids they present.
const maxCached = 10_000

// Verifier checks presented keys against the store. It remembers each
// answer, found or not, for the cache TTL, so a key revoked by another
// process stops working within that time; one revoked through the same
// Store stops at once.
type Verifier struct {
	store *Store
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	cache map[string]cacheEntry
}

type cacheEntry struct {
	cred    credential
	found   bool
	expires time.Time
}

// NewVerifier returns a verifier on store that caches answers for ttl.
// A ttl of zero disables the cache.
func NewVerifier(store *Store, ttl time.Duration) *Verifier {
	v := &Verifier{store: store, ttl: ttl, now: time.Now, cache: make(map[string]cacheEntry)}
	store.notifyRevoke(v.forget)
	return v
}

// Verify returns the principal of token. It fails with ErrInvalidKey for a
// malformed, unknown or wrong key, ErrRevokedKey for a revoked one, and
// another error when the store cannot answer.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	keyID, secret, err := parseToken(token)
	if err != nil {
		return Principal{}, err
	}

	e, err := v.entry(ctx, keyID)
	if err != nil {
		return Principal{}, err
	}
	if !e.found || !secretMatches(secret, e.cred.secretHash) {
		return Principal{}, ErrInvalidKey
	}
	if e.cred.revoked {
		return Principal{}, ErrRevokedKey
	}

	p := e.cred.principal
	p.Scopes = slices.Clone(p.Scopes) // Callers must not edit the cached entry.
	return p, nil
}

func (v *Verifier) entry(ctx context.Context, keyID string) (cacheEntry, error) {
	now := v.now()
	v.mu.Lock()
	e, ok := v.cache[keyID]
	v.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e, nil
	}

	cred, err := v.store.credential(ctx, keyID)
	switch {
	case errors.Is(err, ErrKeyNotFound):
		e = cacheEntry{expires: now.Add(v.ttl)}
	case err != nil:
		return cacheEntry{}, fmt.Errorf("verifying key: %w", err)
	default:
		e = cacheEntry{cred: cred, found: true, expires: now.Add(v.ttl)}
	}
	v.remember(keyID, e)

	return e, nil
}

func (v *Verifier) remember(keyID string, e cacheEntry) {
	if v.ttl <= 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= maxCached {
		// Crude but bounded: a flood of made-up ids costs one refill.
		clear(v.cache)
	}
	v.cache[keyID] = e
}

func (v *Verifier) forget(keyID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.cache, keyID)
}

func validHeaderName(h string) bool {
	if h == "" || h == "authorization" {
		return false
	}
	for _, c := range h {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
