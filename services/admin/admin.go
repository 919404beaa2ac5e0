// Package admin implements costplane.admin.v1.AdminService: tenants and
// their API keys, on top of the auth store.
//
// Operator admin keys manage every tenant. Other admin keys manage only the
// keys of their own tenant, and other tenants are invisible to them: asking
// for one answers NOT_FOUND, as if it did not exist.
//
// The service registers on any *grpc.Server, so it runs standalone
// (cmd/admin) or beside other services in the all-in-one binary. Either way
// the server must authenticate calls with an auth.Authenticator configured
// with Scopes.
package admin

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"

	adminv1 "github.com/costplane/costplane/proto/gen/go/costplane/admin/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
)

// Service implements AdminService.
type Service struct {
	adminv1.UnimplementedAdminServiceServer

	store  *auth.Store
	logger *slog.Logger
}

// New returns the service on store.
func New(store *auth.Store, logger *slog.Logger) *Service {
	return &Service{store: store, logger: logger}
}

// Register registers the service on s.
func (s *Service) Register(g *grpc.Server) {
	adminv1.RegisterAdminServiceServer(g, s)
}

// Scopes returns the scope each RPC requires, for auth.NewAuthenticator.
func Scopes() auth.MethodScopes {
	return auth.MethodScopes{
		adminv1.AdminService_CreateTenant_FullMethodName: auth.ScopeAdmin,
		adminv1.AdminService_GetTenant_FullMethodName:    auth.ScopeAdmin,
		adminv1.AdminService_ListTenants_FullMethodName:  auth.ScopeAdmin,
		adminv1.AdminService_CreateApiKey_FullMethodName: auth.ScopeAdmin,
		adminv1.AdminService_ListApiKeys_FullMethodName:  auth.ScopeAdmin,
		adminv1.AdminService_RevokeApiKey_FullMethodName: auth.ScopeAdmin,
		// Any key may ask what it is.
		adminv1.AdminService_WhoAmI_FullMethodName: auth.ScopeAny,
	}
}

// caller returns the authenticated principal. Its absence means the server
// was built without the authenticator, so the call is refused.
func caller(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Principal{}, apierr.Unauthenticated("missing API key")
	}
	return p, nil
}

// targetTenant resolves the tenant a request acts on: requested, or the
// caller's when empty. A non-operator naming another tenant gets
// auth.ErrTenantNotFound, so other tenants' existence does not leak.
func targetTenant(p auth.Principal, requested string) (string, error) {
	if requested == "" || requested == p.TenantID {
		return p.TenantID, nil
	}
	if err := validateTenantID("tenant_id", requested); err != nil {
		return "", err
	}
	if !p.Operator {
		return "", auth.ErrTenantNotFound
	}
	return requested, nil
}

// WhoAmI describes the calling key and its tenant.
func (s *Service) WhoAmI(ctx context.Context, _ *adminv1.WhoAmIRequest) (
	*adminv1.WhoAmIResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}

	t, err := s.store.GetTenant(ctx, p.TenantID)
	if err != nil {
		return nil, s.toStatus(ctx, err, p.TenantID)
	}
	k, err := s.store.GetKey(ctx, p.TenantID, p.KeyID)
	if err != nil {
		return nil, s.toStatus(ctx, err, p.KeyID)
	}

	return &adminv1.WhoAmIResponse{Tenant: tenantProto(t), ApiKey: keyProto(k)}, nil
}
