package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	// Registers the google.rpc detail types, so that details arriving from
	// the services as Any can be written out as JSON.
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/apierr"
)

// retryUnreachable is the Retry-After given when a service cannot be
// reached at all.
const retryUnreachable = time.Second

// writeError renders err as the JSON of a google.rpc.Status
// ({code, message, details}) with the HTTP status grpc-gateway maps the
// code to. Unlike grpc-gateway's default it sends a real Bearer challenge
// on 401 and Retry-After whenever the status carries a RetryInfo.
//
// TODO: a body that fails to decode (bad JSON, an unknown enum name) comes
// from grpc-gateway as INVALID_ARGUMENT with protojson's message and no
// field violation; naming the field would need that message parsed. It is
// safe for now: the code is right and the message names line and column.
func (g *Gateway) writeError(ctx context.Context, _ *runtime.ServeMux, m runtime.Marshaler,
	w http.ResponseWriter, r *http.Request, err error,
) {
	httpStatus := 0
	if overLimit(ctx) {
		err = tooLarge(g.cfg.MaxBodyBytes)
	}
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		httpStatus, err = hse.HTTPStatus, hse.Err
	}
	st := g.public(ctx, r, status.Convert(err))
	if httpStatus == 0 {
		httpStatus = runtime.HTTPStatusFromCode(st.Code())
	}

	body, merr := m.Marshal(st.Proto())
	if merr != nil {
		g.logger.ErrorContext(ctx, "marshalling an error response", slog.Any("error", merr))
		body = []byte(`{"code":13,"message":"internal error"}`)
		httpStatus = http.StatusInternalServerError
	}

	h := w.Header()
	h.Del("Trailer")
	h.Set("Content-Type", "application/json")
	if st.Code() == codes.Unauthenticated {
		h.Set("WWW-Authenticate", `Bearer realm="costplane"`)
	}
	if d, ok := apierr.RetryDelay(st.Err()); ok {
		h.Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body) // Nothing to do if the client has gone.
}

// public replaces the status of a service that could not be reached, whose
// message comes from the gRPC client and names internal addresses, with a
// plain retryable one. Services' own UNAVAILABLE answers carry RetryInfo
// and pass unchanged.
func (g *Gateway) public(ctx context.Context, r *http.Request, st *status.Status) *status.Status {
	if st.Code() != codes.Unavailable {
		return st
	}
	if _, ok := apierr.RetryDelay(st.Err()); ok {
		return st
	}
	g.logger.WarnContext(ctx, "service unreachable",
		slog.String("path", r.URL.Path), slog.String("error", st.Message()))
	return status.Convert(apierr.Unavailable("service unavailable; retry later", retryUnreachable))
}
