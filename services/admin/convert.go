package admin

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/costplane/costplane/proto/gen/go/costplane/admin/v1"

	"github.com/costplane/costplane/libs/auth"
)

var scopeToProto = map[auth.Scope]adminv1.Scope{
	auth.ScopeIngest: adminv1.Scope_SCOPE_INGEST,
	auth.ScopeRead:   adminv1.Scope_SCOPE_READ,
	auth.ScopeAdmin:  adminv1.Scope_SCOPE_ADMIN,
}

func tenantProto(t auth.Tenant) *adminv1.Tenant {
	return &adminv1.Tenant{
		TenantId:   t.ID,
		Name:       t.Name,
		Operator:   t.Operator,
		CreateTime: timestamppb.New(t.CreateTime),
	}
}

func keyProto(k auth.Key) *adminv1.ApiKey {
	out := &adminv1.ApiKey{
		KeyId:      k.ID,
		TenantId:   k.TenantID,
		Name:       k.Name,
		Prefix:     k.Prefix,
		CreateTime: timestamppb.New(k.CreateTime),
	}
	for _, s := range k.Scopes {
		out.Scopes = append(out.Scopes, scopeToProto[s])
	}
	if !k.RevokeTime.IsZero() {
		out.RevokeTime = timestamppb.New(k.RevokeTime)
	}
	return out
}
