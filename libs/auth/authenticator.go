package auth

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/costplane/costplane/libs/apierr"
)

// MethodScopes maps a full gRPC method name ("/pkg.Service/Method") to the
// scope a caller's key must hold; ScopeAny admits any valid key. A method
// that is missing is denied to everyone, so a new RPC is closed until its
// service declares it. The health and reflection services are always open.
type MethodScopes map[string]Scope

// MergeScopes combines the method scopes of several services.
func MergeScopes(all ...MethodScopes) MethodScopes {
	out := make(MethodScopes)
	for _, m := range all {
		maps.Copy(out, m)
	}
	return out
}

// KeyVerifier checks a presented key. *Verifier is the implementation; a
// service that must not read the auth schema can supply another.
type KeyVerifier interface {
	Verify(ctx context.Context, token string) (Principal, error)
}

// openPrefixes are the services any caller may use without a key.
var openPrefixes = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// retryAfterStoreFailure is the delay suggested when keys cannot be checked.
const retryAfterStoreFailure = time.Second

// Authenticator checks the key of every call and enforces method scopes.
type Authenticator struct {
	verifier  KeyVerifier
	scopes    MethodScopes
	keyHeader string
	logger    *slog.Logger
}

// NewAuthenticator returns an authenticator that verifies keys with v and
// requires the scopes in scopes. Keys are read from "authorization: Bearer"
// or from keyHeader (a lower-case name such as Config.KeyHeader; empty
// turns it off), for clients such as OTel exporters that set a plain header.
func NewAuthenticator(v KeyVerifier, scopes MethodScopes, keyHeader string,
	logger *slog.Logger,
) *Authenticator {
	return &Authenticator{
		verifier:  v,
		scopes:    maps.Clone(scopes),
		keyHeader: strings.ToLower(keyHeader),
		logger:    logger,
	}
}

// Unary returns the unary server interceptor.
func (a *Authenticator) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo,
		handler grpc.UnaryHandler,
	) (any, error) {
		ctx, err := a.authorizeCall(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream returns the stream server interceptor.
func (a *Authenticator) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo,
		handler grpc.StreamHandler,
	) error {
		ctx, err := a.authorizeCall(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &principalStream{ServerStream: ss, ctx: ctx})
	}
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context {
	return s.ctx
}

func (a *Authenticator) authorizeCall(ctx context.Context, method string) (
	context.Context, error,
) {
	for _, p := range openPrefixes {
		if strings.HasPrefix(method, p) {
			return ctx, nil
		}
	}

	md, _ := metadata.FromIncomingContext(ctx)
	token := a.tokenFromMetadata(md)
	p, err := a.authenticate(ctx, token)
	if err != nil {
		return nil, err
	}

	need, ok := a.scopes[method]
	if !ok {
		a.logger.WarnContext(ctx, "denied a method that declares no scope",
			slog.String("method", method))
		return nil, apierr.PermissionDenied("method " + method + " is not open to API keys")
	}
	if err := permit(p, need); err != nil {
		return nil, err
	}

	return NewContext(ctx, p), nil
}

func (a *Authenticator) tokenFromMetadata(md metadata.MD) string {
	for _, v := range md.Get("authorization") {
		if tok, ok := bearer(v); ok {
			return tok
		}
	}
	if a.keyHeader != "" {
		for _, v := range md.Get(a.keyHeader) {
			if v = strings.TrimSpace(v); v != "" {
				return trimBearer(v)
			}
		}
	}
	return ""
}

// authenticate verifies token and maps the outcome to an API error. The
// token itself is never logged.
func (a *Authenticator) authenticate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, apierr.Unauthenticated(
			"missing API key: send the header authorization: Bearer <key>")
	}

	p, err := a.verifier.Verify(ctx, token)
	switch {
	case errors.Is(err, ErrRevokedKey):
		return Principal{}, apierr.Unauthenticated("API key revoked")
	case errors.Is(err, ErrInvalidKey):
		return Principal{}, apierr.Unauthenticated("invalid API key")
	case err != nil:
		a.logger.ErrorContext(ctx, "cannot verify api key", slog.Any("error", err))
		return Principal{}, apierr.Unavailable("cannot verify API keys right now",
			retryAfterStoreFailure)
	}

	return p, nil
}

func permit(p Principal, need Scope) error {
	if p.Has(need) {
		return nil
	}
	return apierr.PermissionDenied("API key lacks the " + string(need) + " scope")
}

// bearer returns the credential of an "Authorization: Bearer x" value.
func bearer(v string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// trimBearer accepts a key header value with or without a Bearer scheme.
func trimBearer(v string) string {
	if tok, ok := bearer(v); ok {
		return tok
	}
	return v
}
