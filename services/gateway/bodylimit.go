package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// bodyLimitKey marks, in a request's context, that its body passed the
// size limit, so the error handler answers 413 rather than the 400
// grpc-gateway makes of any body it cannot read.
type bodyLimitKey struct{}

// limitBody refuses bodies over max bytes with 413: at once when the
// request declares its length, and when a chunked body passes the limit
// while it is read.
func (g *Gateway) limitBody(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			g.writeError(r.Context(), nil, &runtime.JSONPb{}, w, r, tooLarge(max))
			return
		}
		hit := new(bool)
		r = r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, hit))
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, max), hit: hit}
		h.ServeHTTP(w, r)
	})
}

// overLimit reports whether the request's body passed the limit.
func overLimit(ctx context.Context) bool {
	hit, ok := ctx.Value(bodyLimitKey{}).(*bool)
	return ok && *hit
}

func tooLarge(max int64) error {
	return &runtime.HTTPStatusError{
		HTTPStatus: http.StatusRequestEntityTooLarge,
		Err: status.Error(codes.InvalidArgument, fmt.Sprintf(
			"request body is larger than %d bytes (GATEWAY_MAX_BODY_BYTES); "+
				"send smaller batches", max)),
	}
}

type limitedBody struct {
	io.ReadCloser
	hit *bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		*b.hit = true
	}
	return n, err
}
