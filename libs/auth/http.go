package auth

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/costplane/costplane/libs/apierr"
)

// HTTP wraps next so that it runs only for requests with a valid key that
// holds need; the principal is in the request's context. Rejections are
// written as the JSON form of a google.rpc.Status, as the REST gateway
// writes them, with 401, 403 or 503.
func (a *Authenticator) HTTP(need Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, err := a.authenticate(ctx, a.tokenFromHeader(r.Header))
		if err == nil {
			err = permit(p, need)
		}
		if err != nil {
			writeStatus(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(ctx, p)))
	})
}

func (a *Authenticator) tokenFromHeader(h http.Header) string {
	for _, v := range h.Values("Authorization") {
		if tok, ok := bearer(v); ok {
			return tok
		}
	}
	if a.keyHeader != "" {
		if v := strings.TrimSpace(h.Get(a.keyHeader)); v != "" {
			return trimBearer(v)
		}
	}
	return ""
}

func writeStatus(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	body, merr := protojson.MarshalOptions{UseProtoNames: true}.Marshal(st.Proto())
	if merr != nil {
		body = []byte(`{"code":13,"message":"internal error"}`)
	}

	w.Header().Set("Content-Type", "application/json")
	code := http.StatusInternalServerError
	switch st.Code() {
	case codes.Unauthenticated:
		code = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="costplane"`)
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.Unavailable:
		code = http.StatusServiceUnavailable
		if d, ok := apierr.RetryDelay(err); ok {
			w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
		}
	}
	w.WriteHeader(code)
	_, _ = w.Write(body) // The client has gone if this fails; nothing to do.
}
