package auth_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/auth/authtest"
	"github.com/costplane/costplane/libs/log"
	"github.com/costplane/costplane/libs/server"
)

const probeService = "test.v1.Probe"

// probeScopes leaves Unlisted out on purpose: it must be denied.
var probeScopes = auth.MethodScopes{
	"/" + probeService + "/Ingest": auth.ScopeIngest,
	"/" + probeService + "/Admin":  auth.ScopeAdmin,
	"/" + probeService + "/Anyone": auth.ScopeAny,
}

// probeDesc describes a service whose methods answer with the caller's
// tenant, so a test sees what the authenticator put in the context.
func probeDesc() *grpc.ServiceDesc {
	desc := &grpc.ServiceDesc{ServiceName: probeService, HandlerType: (*any)(nil)}
	for _, name := range []string{"Ingest", "Admin", "Anyone", "Unlisted"} {
		full := "/" + probeService + "/" + name
		desc.Methods = append(desc.Methods, grpc.MethodDesc{
			MethodName: name,
			Handler: func(srv any, ctx context.Context, dec func(any) error,
				icpt grpc.UnaryServerInterceptor,
			) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, _ any) (any, error) {
					p, _ := auth.FromContext(ctx)
					return wrapperspb.String(p.TenantID), nil
				}
				return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
			},
		})
	}
	return desc
}

// startProbe serves the probe service behind the authenticator on a
// loopback port and returns a client connection to it.
func startProbe(t *testing.T, v auth.KeyVerifier) *grpc.ClientConn {
	t.Helper()
	logger := log.Discard()
	authn := auth.NewAuthenticator(v, probeScopes, "x-costplane-key", logger)
	cfg := server.Config{
		GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second, MaxRecvBytes: 1 << 20,
	}
	srv, err := server.New(cfg, logger,
		server.WithUnaryInterceptors(authn.Unary()), server.WithStreamInterceptors(authn.Stream()))
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv.GRPC().RegisterService(probeDesc(), struct{}{})

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

func TestAuthenticatorOverGRPC(t *testing.T) {
	store, _ := authtest.NewStore(t)
	ctx := context.Background()
	mustTenant(t, store, "acme", false)
	_, ingest := mustKey(t, store, "acme", auth.ScopeIngest)
	_, admin := mustKey(t, store, "acme", auth.ScopeAdmin, auth.ScopeRead)
	gone, revoked := mustKey(t, store, "acme", auth.ScopeIngest)
	if _, err := store.RevokeKey(ctx, "acme", gone.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	conn := startProbe(t, auth.NewVerifier(store, 5*time.Second))

	tests := []struct {
		name   string
		method string
		md     metadata.MD
		want   codes.Code
	}{
		{"no key", "Ingest", nil, codes.Unauthenticated},
		{"not bearer", "Ingest", metadata.Pairs("authorization", "Basic "+ingest),
			codes.Unauthenticated},
		{"invalid key", "Ingest", bearerMD("cp_nope_nope"), codes.Unauthenticated},
		{"revoked key", "Ingest", bearerMD(revoked), codes.Unauthenticated},
		{"ingest key on ingest", "Ingest", bearerMD(ingest), codes.OK},
		{"ingest key on admin", "Admin", bearerMD(ingest), codes.PermissionDenied},
		{"admin key on ingest", "Ingest", bearerMD(admin), codes.PermissionDenied},
		{"admin key on admin", "Admin", bearerMD(admin), codes.OK},
		{"any key on open-to-keys", "Anyone", bearerMD(ingest), codes.OK},
		{"no key on open-to-keys", "Anyone", nil, codes.Unauthenticated},
		{"undeclared method", "Unlisted", bearerMD(admin), codes.PermissionDenied},
		{"key header", "Ingest", metadata.Pairs("x-costplane-key", ingest), codes.OK},
		{"lower-case bearer", "Ingest", metadata.Pairs("authorization", "bearer "+ingest),
			codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewOutgoingContext(ctx, tt.md)
			out := new(wrapperspb.StringValue)
			err := conn.Invoke(ctx, "/"+probeService+"/"+tt.method, &emptypb.Empty{}, out)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %s (%v), want %s", got, err, tt.want)
			}
			if tt.want == codes.OK && out.GetValue() != "acme" {
				t.Errorf("principal tenant in handler = %q, want acme", out.GetValue())
			}
		})
	}

	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health check without a key = %v, %v; want SERVING", resp, err)
	}
}

func bearerMD(token string) metadata.MD {
	return metadata.Pairs("authorization", "Bearer "+token)
}

func TestAuthenticatorHTTP(t *testing.T) {
	store, _ := authtest.NewStore(t)
	mustTenant(t, store, "acme", false)
	_, ingest := mustKey(t, store, "acme", auth.ScopeIngest)
	_, read := mustKey(t, store, "acme", auth.ScopeRead)

	authn := auth.NewAuthenticator(auth.NewVerifier(store, time.Second), nil, "x-costplane-key",
		log.Discard())
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		_, _ = w.Write([]byte(p.TenantID))
	})
	h := authn.HTTP(auth.ScopeIngest, echo)

	tests := []struct {
		name     string
		header   http.Header
		want     int
		wantBody string
	}{
		{"no key", http.Header{}, http.StatusUnauthorized, ""},
		{"wrong scope", http.Header{"Authorization": {"Bearer " + read}}, http.StatusForbidden, ""},
		{"bearer", http.Header{"Authorization": {"Bearer " + ingest}}, http.StatusOK, "acme"},
		{"key header", http.Header{"X-Costplane-Key": {ingest}}, http.StatusOK, "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/traces", nil)
			req.Header = tt.header
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status = %d (%s), want %d", rec.Code, rec.Body, tt.want)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body, tt.wantBody)
			}
			if tt.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}
