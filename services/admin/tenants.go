package admin

import (
	"context"
	"log/slog"

	adminv1 "github.com/costplane/costplane/proto/gen/go/costplane/admin/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
)

// CreateTenant creates an ordinary tenant; only operators may. Operator
// tenants come from Bootstrap, never from the API.
func (s *Service) CreateTenant(ctx context.Context, req *adminv1.CreateTenantRequest) (
	*adminv1.CreateTenantResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if !p.Operator {
		return nil, s.toStatus(ctx, errNotOperator, "")
	}

	var v apierr.Violations
	if err := validateTenantID("tenant_id", req.GetTenantId()); err != nil {
		v = append(v, apierr.FieldViolations(err)...)
	}
	checkName(&v, "name", req.GetName())
	if err := v.Err(); err != nil {
		return nil, err
	}

	name := req.GetName()
	if name == "" {
		name = req.GetTenantId()
	}
	t, err := s.store.CreateTenant(ctx, auth.Tenant{ID: req.GetTenantId(), Name: name})
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetTenantId())
	}
	s.logger.InfoContext(ctx, "tenant created",
		slog.String("tenant_id", t.ID),
		slog.String("by_tenant_id", p.TenantID),
		slog.String("by_key_id", p.KeyID))

	return &adminv1.CreateTenantResponse{Tenant: tenantProto(t)}, nil
}

// GetTenant returns a tenant the caller may see.
func (s *Service) GetTenant(ctx context.Context, req *adminv1.GetTenantRequest) (
	*adminv1.GetTenantResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateTenantID("tenant_id", req.GetTenantId()); err != nil {
		return nil, err
	}
	id, err := targetTenant(p, req.GetTenantId())
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetTenantId())
	}

	t, err := s.store.GetTenant(ctx, id)
	if err != nil {
		return nil, s.toStatus(ctx, err, id)
	}
	return &adminv1.GetTenantResponse{Tenant: tenantProto(t)}, nil
}

// ListTenants lists every tenant to an operator and the caller's own to
// anyone else.
func (s *Service) ListTenants(ctx context.Context, req *adminv1.ListTenantsRequest) (
	*adminv1.ListTenantsResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := decodeToken(req.GetPageToken(), "tenants")
	if err != nil {
		return nil, err
	}

	if !p.Operator {
		return s.ownTenant(ctx, p, after)
	}
	ts, err := s.store.ListTenants(ctx, after, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, "")
	}

	ts, next := page(ts, size, "tenants", func(t auth.Tenant) string { return t.ID })
	resp := &adminv1.ListTenantsResponse{NextPageToken: next}
	for _, t := range ts {
		resp.Tenants = append(resp.Tenants, tenantProto(t))
	}
	return resp, nil
}

// ownTenant is the one-page listing a non-operator sees.
func (s *Service) ownTenant(ctx context.Context, p auth.Principal, after string) (
	*adminv1.ListTenantsResponse, error,
) {
	resp := &adminv1.ListTenantsResponse{}
	if after != "" {
		return resp, nil // The single item was on the first page.
	}
	t, err := s.store.GetTenant(ctx, p.TenantID)
	if err != nil {
		return nil, s.toStatus(ctx, err, p.TenantID)
	}
	resp.Tenants = []*adminv1.Tenant{tenantProto(t)}
	return resp, nil
}
