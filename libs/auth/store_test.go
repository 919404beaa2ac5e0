package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/auth/authtest"
)

func mustTenant(t *testing.T, s *auth.Store, id string, operator bool) auth.Tenant {
	t.Helper()
	tn, err := s.CreateTenant(context.Background(),
		auth.Tenant{ID: id, Name: id, Operator: operator})
	if err != nil {
		t.Fatalf("CreateTenant(%s): %v", id, err)
	}
	return tn
}

func mustKey(t *testing.T, s *auth.Store, tenantID string, scopes ...auth.Scope) (
	auth.Key, string,
) {
	t.Helper()
	k, token, err := s.CreateKey(context.Background(), tenantID, "test key", scopes)
	if err != nil {
		t.Fatalf("CreateKey(%s): %v", tenantID, err)
	}
	return k, token
}

func TestCreateKeyStoresOnlyAHash(t *testing.T) {
	store, pool := authtest.NewStore(t)
	ctx := context.Background()
	mustTenant(t, store, "acme", false)
	k, token := mustKey(t, store, "acme", auth.ScopeIngest)

	secret := token[strings.LastIndex(token, "_")+1:]
	if want := "cp_" + k.ID + "_"; !strings.HasPrefix(token, want) || len(secret) < 32 {
		t.Fatalf("token %q: want prefix %q and a secret of at least 32 characters", token, want)
	}

	// Every column of every row, as text, must be free of the secret.
	for _, table := range []string{"auth.api_keys", "auth.tenants"} {
		rows, err := pool.Query(ctx, "SELECT r::text FROM "+table+" r")
		if err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatalf("scanning %s: %v", table, err)
			}
			if strings.Contains(row, secret) {
				t.Errorf("%s row %q contains the secret", table, row)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
	}

	var stored []byte
	err := pool.QueryRow(ctx, "SELECT secret_hash FROM auth.api_keys WHERE key_id = $1", k.ID).
		Scan(&stored)
	if err != nil {
		t.Fatalf("reading hash: %v", err)
	}
	want := sha256.Sum256([]byte(secret))
	if hex.EncodeToString(stored) != hex.EncodeToString(want[:]) {
		t.Errorf("stored hash is not SHA-256 of the secret")
	}
}

func TestTenantsAndKeys(t *testing.T) {
	store, _ := authtest.NewStore(t)
	ctx := context.Background()
	acme := mustTenant(t, store, "acme", false)

	_, err := store.CreateTenant(ctx, auth.Tenant{ID: "acme", Name: "again"})
	if !errors.Is(err, auth.ErrTenantExists) {
		t.Errorf("CreateTenant(duplicate) error = %v, want ErrTenantExists", err)
	}
	got, err := store.GetTenant(ctx, "acme")
	if err != nil {
		t.Fatalf("GetTenant: %v", err)
	}
	if diff := cmp.Diff(acme, got); diff != "" {
		t.Errorf("GetTenant mismatch (-want +got):\n%s", diff)
	}
	if _, err := store.GetTenant(ctx, "nobody"); !errors.Is(err, auth.ErrTenantNotFound) {
		t.Errorf("GetTenant(nobody) error = %v, want ErrTenantNotFound", err)
	}
	_, _, err = store.CreateKey(ctx, "nobody", "k", auth.AllScopes)
	if !errors.Is(err, auth.ErrTenantNotFound) {
		t.Errorf("CreateKey(nobody) error = %v, want ErrTenantNotFound", err)
	}

	k, _ := mustKey(t, store, "acme", auth.ScopeRead, auth.ScopeAdmin)
	revoked, err := store.RevokeKey(ctx, "acme", k.ID)
	if err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if revoked.RevokeTime.IsZero() {
		t.Fatalf("RevokeKey returned a key without revoke time")
	}
	again, err := store.RevokeKey(ctx, "acme", k.ID)
	if err != nil {
		t.Fatalf("RevokeKey again: %v", err)
	}
	if diff := cmp.Diff(revoked, again); diff != "" {
		t.Errorf("revoking twice changed the key (-first +second):\n%s", diff)
	}
	want := k
	want.RevokeTime = revoked.RevokeTime
	if diff := cmp.Diff(want, revoked); diff != "" {
		t.Errorf("RevokeKey mismatch (-want +got):\n%s", diff)
	}
}

func TestTenantIsolation(t *testing.T) {
	store, _ := authtest.NewStore(t)
	ctx := context.Background()
	mustTenant(t, store, "tenant-a", false)
	mustTenant(t, store, "tenant-b", false)
	keyA, _ := mustKey(t, store, "tenant-a", auth.ScopeAdmin)
	keyB, _ := mustKey(t, store, "tenant-b", auth.ScopeAdmin)

	listed, err := store.ListKeys(ctx, "tenant-a", "", 100)
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	if diff := cmp.Diff([]auth.Key{keyA}, listed); diff != "" {
		t.Errorf("ListKeys(tenant-a) mismatch (-want +got):\n%s", diff)
	}
	if _, err := store.GetKey(ctx, "tenant-a", keyB.ID); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Errorf("GetKey(tenant-a, key of b) error = %v, want ErrKeyNotFound", err)
	}
	if _, err := store.RevokeKey(ctx, "tenant-a", keyB.ID); !errors.Is(err, auth.ErrKeyNotFound) {
		t.Errorf("RevokeKey(tenant-a, key of b) error = %v, want ErrKeyNotFound", err)
	}
	if b, err := store.GetKey(ctx, "tenant-b", keyB.ID); err != nil || !b.RevokeTime.IsZero() {
		t.Errorf("key of b after a's revoke attempt = %+v, %v; want active", b, err)
	}
}

func TestListKeysPages(t *testing.T) {
	store, _ := authtest.NewStore(t)
	ctx := context.Background()
	mustTenant(t, store, "acme", false)
	var want []auth.Key
	for range 5 {
		k, _ := mustKey(t, store, "acme", auth.ScopeRead)
		want = append(want, k)
	}

	var got []auth.Key
	after := ""
	for range 10 {
		page, err := store.ListKeys(ctx, "acme", after, 2)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1].ID
	}

	byTime := cmpopts.SortSlices(func(a, b auth.Key) bool {
		if !a.CreateTime.Equal(b.CreateTime) {
			return a.CreateTime.Before(b.CreateTime)
		}
		return a.ID < b.ID
	})
	if diff := cmp.Diff(want, got, byTime); diff != "" {
		t.Errorf("paged keys mismatch (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].CreateTime.Before(got[i-1].CreateTime) {
			t.Errorf("keys not in creation order at %d", i)
		}
	}
}

func TestBootstrap(t *testing.T) {
	store, _ := authtest.NewStore(t)
	ctx := context.Background()
	v := auth.NewVerifier(store, time.Second)

	token, err := store.Bootstrap(ctx, "operator", "")
	if err != nil || token == "" {
		t.Fatalf("Bootstrap = %q, %v; want a new token", token, err)
	}
	p, err := v.Verify(ctx, token)
	if err != nil {
		t.Fatalf("Verify(bootstrap token): %v", err)
	}
	want := auth.Principal{
		TenantID: "operator", KeyID: p.KeyID, Scopes: auth.AllScopes, Operator: true,
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("bootstrap principal mismatch (-want +got):\n%s", diff)
	}

	if again, err := store.Bootstrap(ctx, "operator", ""); err != nil || again != "" {
		t.Errorf("second Bootstrap = %q, %v; want no new key", again, err)
	}

	dev := "cp_devkey_" + strings.Repeat("a1", 20)
	for range 2 {
		if got, err := store.Bootstrap(ctx, "operator", dev); err != nil || got != dev {
			t.Fatalf("Bootstrap(dev key) = %q, %v; want the dev key", got, err)
		}
	}
	if _, err := v.Verify(ctx, dev); err != nil {
		t.Errorf("Verify(dev key): %v", err)
	}
	clash := "cp_devkey_" + strings.Repeat("b2", 20)
	if _, err := store.Bootstrap(ctx, "operator", clash); err == nil {
		t.Errorf("Bootstrap(dev key with a taken id) succeeded; want an error")
	}

	mustTenant(t, store, "plain", false)
	if _, err := store.Bootstrap(ctx, "plain", ""); err == nil {
		t.Errorf("Bootstrap(non-operator tenant) succeeded; want an error")
	}
}
