package admin_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	adminv1 "github.com/costplane/costplane/proto/gen/go/costplane/admin/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/auth/authtest"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
	"github.com/costplane/costplane/services/admin"
)

// fixture is an admin server on a loopback port with three tenants: the
// operator "ops" and the ordinary "tenant-a" and "tenant-b".
type fixture struct {
	client adminv1.AdminServiceClient
	store  *auth.Store
	// Tokens by name: ops, a-admin, a-read, b-admin.
	tokens map[string]string
	keys   map[string]auth.Key
}

func setup(t *testing.T) *fixture {
	t.Helper()
	store, _ := authtest.NewStore(t)
	f := &fixture{store: store, tokens: map[string]string{}, keys: map[string]auth.Key{}}
	ctx := context.Background()
	for _, tn := range []auth.Tenant{
		{ID: "ops", Name: "Operators", Operator: true},
		{ID: "tenant-a", Name: "A"},
		{ID: "tenant-b", Name: "B"},
	} {
		if _, err := store.CreateTenant(ctx, tn); err != nil {
			t.Fatalf("CreateTenant(%s): %v", tn.ID, err)
		}
	}
	f.addKey(t, "ops", "ops", auth.ScopeAdmin)
	f.addKey(t, "a-admin", "tenant-a", auth.ScopeAdmin)
	f.addKey(t, "a-read", "tenant-a", auth.ScopeRead)
	f.addKey(t, "b-admin", "tenant-b", auth.ScopeAdmin)

	f.client = adminv1.NewAdminServiceClient(serve(t, store))
	return f
}

func (f *fixture) addKey(t *testing.T, name, tenantID string, scopes ...auth.Scope) {
	t.Helper()
	k, token, err := f.store.CreateKey(context.Background(), tenantID, name, scopes)
	if err != nil {
		t.Fatalf("CreateKey(%s): %v", name, err)
	}
	f.tokens[name], f.keys[name] = token, k
}

// as returns a context whose calls carry the named key.
func (f *fixture) as(name string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(),
		"authorization", "Bearer "+f.tokens[name])
}

// serve runs the admin service the way cmd/admin does and returns a
// client connection to it.
func serve(t *testing.T, store *auth.Store) *grpc.ClientConn {
	t.Helper()
	logger := log.Discard()
	authn := auth.NewAuthenticator(auth.NewVerifier(store, 5*time.Second), admin.Scopes(),
		"x-costplane-key", logger)
	cfg := server.Config{
		GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second, MaxRecvBytes: 1 << 20,
	}
	srv, err := server.New(cfg, logger,
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv.Register(admin.New(store, logger))

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code = %s (%v), want %s", what, got, err, want)
	}
}

var ignoreTimes = protocmp.IgnoreFields(&adminv1.ApiKey{}, "create_time", "revoke_time")

func TestUnauthenticatedWithoutKey(t *testing.T) {
	f := setup(t)
	ctx := context.Background()

	_, err := f.client.WhoAmI(ctx, &adminv1.WhoAmIRequest{})
	wantCode(t, "WhoAmI without key", err, codes.Unauthenticated)
	_, err = f.client.ListApiKeys(ctx, &adminv1.ListApiKeysRequest{})
	wantCode(t, "ListApiKeys without key", err, codes.Unauthenticated)
	bad := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer cp_nope_nope")
	_, err = f.client.WhoAmI(bad, &adminv1.WhoAmIRequest{})
	wantCode(t, "WhoAmI with a bad key", err, codes.Unauthenticated)
}

func TestScopes(t *testing.T) {
	f := setup(t)

	_, err := f.client.ListApiKeys(f.as("a-read"), &adminv1.ListApiKeysRequest{})
	wantCode(t, "ListApiKeys with a read key", err, codes.PermissionDenied)
	_, err = f.client.CreateApiKey(f.as("a-read"), &adminv1.CreateApiKeyRequest{
		Scopes: []adminv1.Scope{adminv1.Scope_SCOPE_ADMIN},
	})
	wantCode(t, "CreateApiKey with a read key", err, codes.PermissionDenied)

	got, err := f.client.WhoAmI(f.as("a-read"), &adminv1.WhoAmIRequest{})
	if err != nil {
		t.Fatalf("WhoAmI with a read key: %v", err)
	}
	want := &adminv1.WhoAmIResponse{
		Tenant: &adminv1.Tenant{TenantId: "tenant-a", Name: "A"},
		ApiKey: &adminv1.ApiKey{
			KeyId: f.keys["a-read"].ID, TenantId: "tenant-a", Name: "a-read",
			Scopes: []adminv1.Scope{adminv1.Scope_SCOPE_READ}, Prefix: f.keys["a-read"].Prefix,
		},
	}
	opts := []cmp.Option{protocmp.Transform(), ignoreTimes,
		protocmp.IgnoreFields(&adminv1.Tenant{}, "create_time")}
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Errorf("WhoAmI mismatch (-want +got):\n%s", diff)
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	f := setup(t)
	a := f.as("a-admin")

	_, err := f.client.GetTenant(a, &adminv1.GetTenantRequest{TenantId: "tenant-b"})
	wantCode(t, "GetTenant of another tenant", err, codes.NotFound)
	_, err = f.client.GetTenant(a, &adminv1.GetTenantRequest{TenantId: "no-such-tenant"})
	wantCode(t, "GetTenant of a missing tenant", err, codes.NotFound)
	_, err = f.client.ListApiKeys(a, &adminv1.ListApiKeysRequest{TenantId: "tenant-b"})
	wantCode(t, "ListApiKeys of another tenant", err, codes.NotFound)
	_, err = f.client.CreateApiKey(a, &adminv1.CreateApiKeyRequest{
		TenantId: "tenant-b", Scopes: []adminv1.Scope{adminv1.Scope_SCOPE_ADMIN},
	})
	wantCode(t, "CreateApiKey for another tenant", err, codes.NotFound)
	_, err = f.client.RevokeApiKey(a, &adminv1.RevokeApiKeyRequest{KeyId: f.keys["b-admin"].ID})
	wantCode(t, "RevokeApiKey of another tenant's key", err, codes.NotFound)
	if _, err := f.client.WhoAmI(f.as("b-admin"), &adminv1.WhoAmIRequest{}); err != nil {
		t.Errorf("tenant-b's key after tenant-a tried to revoke it: %v", err)
	}

	tenants, err := f.client.ListTenants(a, &adminv1.ListTenantsRequest{})
	if err != nil {
		t.Fatalf("ListTenants: %v", err)
	}
	if diff := cmp.Diff([]string{"tenant-a"}, tenantIDs(tenants.GetTenants())); diff != "" {
		t.Errorf("ListTenants as tenant-a mismatch (-want +got):\n%s", diff)
	}

	keys, err := f.client.ListApiKeys(a, &adminv1.ListApiKeysRequest{})
	if err != nil {
		t.Fatalf("ListApiKeys: %v", err)
	}
	want := []string{f.keys["a-admin"].ID, f.keys["a-read"].ID}
	if diff := cmp.Diff(want, keyIDs(keys.GetApiKeys())); diff != "" {
		t.Errorf("ListApiKeys as tenant-a mismatch (-want +got):\n%s", diff)
	}
}

func TestOperatorManagesTenants(t *testing.T) {
	f := setup(t)
	ops := f.as("ops")

	newC := &adminv1.CreateTenantRequest{TenantId: "tenant-c"}
	_, err := f.client.CreateTenant(f.as("a-admin"), newC)
	wantCode(t, "CreateTenant by a non-operator", err, codes.PermissionDenied)
	created, err := f.client.CreateTenant(ops, &adminv1.CreateTenantRequest{TenantId: "tenant-c"})
	if err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	if c := created.GetTenant(); c.GetName() != "tenant-c" || c.GetOperator() {
		t.Errorf("created tenant = %v; want name defaulted to the id, not an operator", c)
	}
	_, err = f.client.CreateTenant(ops, &adminv1.CreateTenantRequest{TenantId: "tenant-c"})
	wantCode(t, "CreateTenant twice", err, codes.AlreadyExists)

	var ids []string
	req := &adminv1.ListTenantsRequest{PageSize: 3}
	for range 5 {
		resp, err := f.client.ListTenants(ops, req)
		if err != nil {
			t.Fatalf("ListTenants: %v", err)
		}
		ids = append(ids, tenantIDs(resp.GetTenants())...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{"ops", "tenant-a", "tenant-b", "tenant-c"}, ids); diff != "" {
		t.Errorf("paged ListTenants mismatch (-want +got):\n%s", diff)
	}

	issued, err := f.client.CreateApiKey(ops, &adminv1.CreateApiKeyRequest{
		TenantId: "tenant-c", Name: "ingest",
		Scopes: []adminv1.Scope{adminv1.Scope_SCOPE_INGEST, adminv1.Scope_SCOPE_INGEST},
	})
	if err != nil {
		t.Fatalf("CreateApiKey for tenant-c: %v", err)
	}
	if got := issued.GetApiKey().GetScopes(); len(got) != 1 {
		t.Errorf("scopes = %v; want the repeat dropped", got)
	}
	_, err = f.client.CreateApiKey(ops, &adminv1.CreateApiKeyRequest{
		TenantId: "no-such-tenant", Scopes: []adminv1.Scope{adminv1.Scope_SCOPE_READ},
	})
	wantCode(t, "CreateApiKey for a missing tenant", err, codes.NotFound)

	listed, err := f.client.ListApiKeys(ops, &adminv1.ListApiKeysRequest{TenantId: "tenant-c"})
	if err != nil {
		t.Fatalf("ListApiKeys(tenant-c): %v", err)
	}
	want := []*adminv1.ApiKey{issued.GetApiKey()}
	if diff := cmp.Diff(want, listed.GetApiKeys(), protocmp.Transform()); diff != "" {
		t.Errorf("ListApiKeys(tenant-c) mismatch (-want +got):\n%s", diff)
	}
}

func TestRevokeTakesEffectAtOnce(t *testing.T) {
	f := setup(t)
	b := f.as("b-admin")
	if _, err := f.client.WhoAmI(b, &adminv1.WhoAmIRequest{}); err != nil {
		t.Fatalf("WhoAmI before revoke: %v", err)
	}

	resp, err := f.client.RevokeApiKey(f.as("ops"),
		&adminv1.RevokeApiKeyRequest{KeyId: f.keys["b-admin"].ID})
	if err != nil {
		t.Fatalf("RevokeApiKey by operator: %v", err)
	}
	if resp.GetApiKey().GetRevokeTime() == nil {
		t.Errorf("revoked key has no revoke_time: %v", resp.GetApiKey())
	}
	_, err = f.client.WhoAmI(b, &adminv1.WhoAmIRequest{})
	wantCode(t, "WhoAmI with the revoked key", err, codes.Unauthenticated)

	own, err := f.client.RevokeApiKey(f.as("a-admin"),
		&adminv1.RevokeApiKeyRequest{KeyId: f.keys["a-read"].ID})
	if err != nil || own.GetApiKey().GetRevokeTime() == nil {
		t.Errorf("RevokeApiKey of an own key = %v, %v; want it revoked", own, err)
	}
}

func TestValidationNamesTheField(t *testing.T) {
	f := setup(t)
	ops := f.as("ops")
	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"bad tenant id", func() error {
			_, err := f.client.CreateTenant(ops, &adminv1.CreateTenantRequest{TenantId: "Bad_ID"})
			return err
		}, "tenant_id"},
		{"empty tenant id", func() error {
			_, err := f.client.CreateTenant(ops, &adminv1.CreateTenantRequest{})
			return err
		}, "tenant_id"},
		{"unspecified scope", func() error {
			_, err := f.client.CreateApiKey(ops, &adminv1.CreateApiKeyRequest{
				Scopes: []adminv1.Scope{adminv1.Scope_SCOPE_READ, adminv1.Scope_SCOPE_UNSPECIFIED},
			})
			return err
		}, "scopes[1]"},
		{"no scopes", func() error {
			_, err := f.client.CreateApiKey(ops, &adminv1.CreateApiKeyRequest{})
			return err
		}, "scopes"},
		{"negative page size", func() error {
			_, err := f.client.ListTenants(ops, &adminv1.ListTenantsRequest{PageSize: -1})
			return err
		}, "page_size"},
		{"forged page token", func() error {
			_, err := f.client.ListTenants(ops, &adminv1.ListTenantsRequest{PageToken: "abc"})
			return err
		}, "page_token"},
		{"empty key id", func() error {
			_, err := f.client.RevokeApiKey(ops, &adminv1.RevokeApiKeyRequest{})
			return err
		}, "key_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, tt.name, err, codes.InvalidArgument)
			var fields []string
			for _, v := range apierr.FieldViolations(err) {
				fields = append(fields, v.Field)
			}
			if diff := cmp.Diff([]string{tt.field}, fields); diff != "" {
				t.Errorf("violated fields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func tenantIDs(ts []*adminv1.Tenant) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.GetTenantId())
	}
	return out
}

func keyIDs(ks []*adminv1.ApiKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.GetKeyId())
	}
	return out
}
