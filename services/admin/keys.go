package admin

import (
	"context"
	"log/slog"

	adminv1 "github.com/costplane/costplane/proto/gen/go/costplane/admin/v1"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
)

// CreateApiKey issues a key for the caller's tenant, or for any tenant when
// the caller is an operator. The secret is in this response only.
func (s *Service) CreateApiKey(ctx context.Context, req *adminv1.CreateApiKeyRequest) (
	*adminv1.CreateApiKeyResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}

	var v apierr.Violations
	checkName(&v, "name", req.GetName())
	scopes := checkScopes(&v, "scopes", req.GetScopes())
	if err := v.Err(); err != nil {
		return nil, err
	}
	tenantID, err := targetTenant(p, req.GetTenantId())
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetTenantId())
	}

	k, token, err := s.store.CreateKey(ctx, tenantID, req.GetName(), scopes)
	if err != nil {
		return nil, s.toStatus(ctx, err, tenantID)
	}
	s.logger.InfoContext(ctx, "api key created",
		slog.String("tenant_id", tenantID),
		slog.String("key_id", k.ID),
		slog.String("by_tenant_id", p.TenantID),
		slog.String("by_key_id", p.KeyID))

	return &adminv1.CreateApiKeyResponse{ApiKey: keyProto(k), Secret: token}, nil
}

// ListApiKeys lists the keys of a tenant the caller manages, oldest first.
func (s *Service) ListApiKeys(ctx context.Context, req *adminv1.ListApiKeysRequest) (
	*adminv1.ListApiKeysResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	tenantID, err := targetTenant(p, req.GetTenantId())
	if err != nil {
		return nil, s.toStatus(ctx, err, req.GetTenantId())
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	scope := "keys/" + tenantID
	after, err := decodeToken(req.GetPageToken(), scope)
	if err != nil {
		return nil, err
	}

	if err := s.requireTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	ks, err := s.store.ListKeys(ctx, tenantID, after, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, tenantID)
	}

	ks, next := page(ks, size, scope, func(k auth.Key) string { return k.ID })
	resp := &adminv1.ListApiKeysResponse{NextPageToken: next}
	for _, k := range ks {
		resp.ApiKeys = append(resp.ApiKeys, keyProto(k))
	}
	return resp, nil
}

// requireTenant tells an operator that a tenant does not exist, rather than
// answering with an empty list.
func (s *Service) requireTenant(ctx context.Context, tenantID string) error {
	if _, err := s.store.GetTenant(ctx, tenantID); err != nil {
		return s.toStatus(ctx, err, tenantID)
	}
	return nil
}

// RevokeApiKey revokes a key of the caller's tenant, or of any tenant when
// the caller is an operator. Keys of other tenants are NOT_FOUND to others.
func (s *Service) RevokeApiKey(ctx context.Context, req *adminv1.RevokeApiKeyRequest) (
	*adminv1.RevokeApiKeyResponse, error,
) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	keyID := req.GetKeyId()
	if keyID == "" {
		return nil, apierr.Invalid("key_id", "must not be empty")
	}

	tenantID, err := s.keyTenant(ctx, p, keyID)
	if err != nil {
		return nil, s.toStatus(ctx, err, keyID)
	}
	k, err := s.store.RevokeKey(ctx, tenantID, keyID)
	if err != nil {
		return nil, s.toStatus(ctx, err, keyID)
	}
	s.logger.InfoContext(ctx, "api key revoked",
		slog.String("tenant_id", tenantID),
		slog.String("key_id", keyID),
		slog.String("by_tenant_id", p.TenantID),
		slog.String("by_key_id", p.KeyID))

	return &adminv1.RevokeApiKeyResponse{ApiKey: keyProto(k)}, nil
}

// keyTenant is the tenant to revoke keyID in: the caller's own, or for an
// operator whichever tenant owns the key.
func (s *Service) keyTenant(ctx context.Context, p auth.Principal, keyID string) (string, error) {
	if !p.Operator {
		return p.TenantID, nil
	}
	return s.store.KeyTenant(ctx, keyID)
}
