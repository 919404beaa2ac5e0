// Package auth holds costplane's tenants and API keys and checks the keys
// that callers present.
//
// A key reads cp_<key id>_<secret>. Only the SHA-256 of the secret is kept,
// in the PostgreSQL schema "auth" (see Migrate). A Verifier checks presented
// keys through a short-lived cache; an Authenticator applies it to gRPC calls
// and HTTP requests, enforces a scope per method and puts the caller's
// Principal in the context, where FromContext finds it.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Scope is a permission an API key carries.
type Scope string

// The scopes a key can hold.
const (
	// ScopeIngest sends usage, outcomes and traces.
	ScopeIngest Scope = "ingest"
	// ScopeRead reads cost data.
	ScopeRead Scope = "read"
	// ScopeAdmin manages keys, rates, budgets and other configuration.
	ScopeAdmin Scope = "admin"
)

// ScopeAny is not a scope a key holds: in MethodScopes it admits any valid
// key, whatever its scopes.
const ScopeAny Scope = "*"

// AllScopes lists every scope a key can hold.
var AllScopes = []Scope{ScopeIngest, ScopeRead, ScopeAdmin}

// ParseScope returns the scope named s.
func ParseScope(s string) (Scope, error) {
	if slices.Contains(AllScopes, Scope(s)) {
		return Scope(s), nil
	}
	return "", fmt.Errorf("unknown scope %q (want ingest, read or admin)", s)
}

// Errors of the store and the verifier. Callers branch on them with
// errors.Is.
var (
	ErrTenantNotFound = errors.New("tenant not found")
	ErrTenantExists   = errors.New("tenant already exists")
	ErrKeyNotFound    = errors.New("api key not found")
	// ErrInvalidKey means a presented key is malformed, unknown or has the
	// wrong secret.
	ErrInvalidKey = errors.New("invalid api key")
	// ErrRevokedKey means the key was right but has been revoked. It
	// matches ErrInvalidKey too.
	ErrRevokedKey = fmt.Errorf("%w: revoked", ErrInvalidKey)
)

// Tenant is an organisation whose data costplane keeps apart from others'.
type Tenant struct {
	ID   string
	Name string
	// Operator tenants run the installation and may manage other tenants.
	Operator   bool
	CreateTime time.Time
}

// Key describes an API key; the secret is never part of it.
type Key struct {
	ID       string
	TenantID string
	Name     string
	Scopes   []Scope
	// Prefix is the first characters of the secret, to recognise a key.
	Prefix     string
	CreateTime time.Time
	// RevokeTime is zero while the key is active.
	RevokeTime time.Time
}

// Principal is the verified caller of a request.
type Principal struct {
	TenantID string
	KeyID    string
	Scopes   []Scope
	// Operator is set when the key belongs to an operator tenant.
	Operator bool
}

// Has reports whether the principal holds scope s. Every principal has
// ScopeAny.
func (p Principal) Has(s Scope) bool {
	return s == ScopeAny || slices.Contains(p.Scopes, s)
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal that the Authenticator put in ctx.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
