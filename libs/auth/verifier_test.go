package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/auth/authtest"
)

func TestVerify(t *testing.T) {
	store, _ := authtest.NewStore(t)
	ctx := context.Background()
	mustTenant(t, store, "acme", false)
	mustTenant(t, store, "ops", true)
	key, token := mustKey(t, store, "acme", auth.ScopeIngest, auth.ScopeRead)
	opsKey, opsToken := mustKey(t, store, "ops", auth.ScopeAdmin)
	gone, goneToken := mustKey(t, store, "acme", auth.ScopeRead)
	if _, err := store.RevokeKey(ctx, "acme", gone.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	wrongSecret := token[:len(token)-4] + "aaaa"
	if wrongSecret == token {
		wrongSecret = token[:len(token)-4] + "bbbb"
	}

	tests := []struct {
		name    string
		token   string
		want    auth.Principal
		wantErr error
	}{
		{"ok", token, auth.Principal{
			TenantID: "acme", KeyID: key.ID, Scopes: []auth.Scope{auth.ScopeIngest, auth.ScopeRead},
		}, nil},
		{"operator", opsToken, auth.Principal{
			TenantID: "ops", KeyID: opsKey.ID, Scopes: []auth.Scope{auth.ScopeAdmin},
			Operator: true,
		}, nil},
		{"empty", "", auth.Principal{}, auth.ErrInvalidKey},
		{"garbage", "hello", auth.Principal{}, auth.ErrInvalidKey},
		{"unknown id", "cp_unknownkeyid_" + strings.Repeat("a", 52), auth.Principal{},
			auth.ErrInvalidKey},
		{"wrong secret", wrongSecret, auth.Principal{}, auth.ErrInvalidKey},
		{"revoked", goneToken, auth.Principal{}, auth.ErrRevokedKey},
	}
	v := auth.NewVerifier(store, 5*time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // The second round is answered from the cache.
				got, err := v.Verify(ctx, tt.token)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("Verify mismatch (-want +got):\n%s", diff)
				}
			}
		})
	}
	if !errors.Is(auth.ErrRevokedKey, auth.ErrInvalidKey) {
		t.Errorf("ErrRevokedKey does not match ErrInvalidKey")
	}
}

func TestRevocationInSameProcessIsImmediate(t *testing.T) {
	store, _ := authtest.NewStore(t)
	ctx := context.Background()
	mustTenant(t, store, "acme", false)
	key, token := mustKey(t, store, "acme", auth.ScopeRead)

	v := auth.NewVerifier(store, time.Minute)
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatalf("Verify before revoke: %v", err)
	}
	if _, err := store.RevokeKey(ctx, "acme", key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if _, err := v.Verify(ctx, token); !errors.Is(err, auth.ErrRevokedKey) {
		t.Errorf("Verify right after revoke error = %v, want ErrRevokedKey", err)
	}
}

func TestRevocationElsewhereWithinTTL(t *testing.T) {
	store, pool := authtest.NewStore(t)
	ctx := context.Background()
	mustTenant(t, store, "acme", false)
	key, token := mustKey(t, store, "acme", auth.ScopeRead)

	const ttl = 300 * time.Millisecond
	v := auth.NewVerifier(store, ttl)
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatalf("Verify before revoke: %v", err)
	}

	// Another process's store: its revocation reaches v only through the
	// database, after v's cached answer expires.
	other := auth.NewStore(pool)
	revokedAt := time.Now()
	if _, err := other.RevokeKey(ctx, "acme", key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	for {
		_, err := v.Verify(ctx, token)
		if errors.Is(err, auth.ErrRevokedKey) {
			break
		}
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if time.Since(revokedAt) > ttl+200*time.Millisecond {
			t.Fatalf("key still accepted %s after revocation; ttl is %s",
				time.Since(revokedAt), ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg auth.Config
		ok  bool
	}{
		{auth.Config{CacheTTL: 5 * time.Second, KeyHeader: "x-costplane-key"}, true},
		{auth.Config{CacheTTL: 0, KeyHeader: "x-key"}, true},
		{auth.Config{CacheTTL: -time.Second, KeyHeader: "x-key"}, false},
		{auth.Config{CacheTTL: time.Hour, KeyHeader: "x-key"}, false},
		{auth.Config{CacheTTL: time.Second, KeyHeader: "authorization"}, false},
		{auth.Config{CacheTTL: time.Second, KeyHeader: "X-Key"}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%t", tt.cfg, err, tt.ok)
		}
	}
}
