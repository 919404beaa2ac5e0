// Package apierr builds the gRPC errors that costplane's APIs return: a
// precise status code and, for bad input, a google.rpc.BadRequest detail that
// names every offending field. The REST gateway renders the same status as
// JSON, so both sides of the API report errors identically.
//
// Each service maps its domain errors to these helpers in one place; anything
// it does not recognise goes through Internal, which logs the detail and
// returns a bare INTERNAL status.
package apierr

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// FieldViolation names one bad field of a request and says what is wrong.
// Field is a path in proto field names, such as "events[3].event_id".
type FieldViolation struct {
	Field       string
	Description string
}

// Violations collects the field violations of a request while it is being
// validated, so that one response reports all of them.
type Violations []FieldViolation

// Add records that field is wrong for the reason description.
func (v *Violations) Add(field, description string) {
	*v = append(*v, FieldViolation{Field: field, Description: description})
}

// Err returns an INVALID_ARGUMENT error carrying every violation, or nil
// when there is none.
func (v Violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return InvalidFields(v...)
}

// Invalid returns an INVALID_ARGUMENT error for one bad field.
func Invalid(field, description string) error {
	return InvalidFields(FieldViolation{Field: field, Description: description})
}

// InvalidFields returns an INVALID_ARGUMENT error with a BadRequest detail
// listing vs. The message repeats them so that a client reading only the
// message still learns which field is wrong.
func InvalidFields(vs ...FieldViolation) error {
	br := &errdetails.BadRequest{}
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       v.Field,
			Description: v.Description,
		})
		parts = append(parts, v.Field+": "+v.Description)
	}
	return withDetails(codes.InvalidArgument, "invalid request: "+strings.Join(parts, "; "), br)
}

// NotFound returns a NOT_FOUND error for the resource of kind resourceType
// (for example "tenant") named name.
func NotFound(resourceType, name string) error {
	info := &errdetails.ResourceInfo{ResourceType: resourceType, ResourceName: name}
	return withDetails(codes.NotFound, resourceType+" "+quote(name)+" not found", info)
}

// AlreadyExists returns an ALREADY_EXISTS error for the resource of kind
// resourceType named name.
func AlreadyExists(resourceType, name string) error {
	info := &errdetails.ResourceInfo{ResourceType: resourceType, ResourceName: name}
	return withDetails(codes.AlreadyExists, resourceType+" "+quote(name)+" already exists", info)
}

// PermissionDenied returns a PERMISSION_DENIED error; msg says what the
// caller lacks, never what exists.
func PermissionDenied(msg string) error {
	return status.Error(codes.PermissionDenied, msg)
}

// Unauthenticated returns an UNAUTHENTICATED error.
func Unauthenticated(msg string) error {
	return status.Error(codes.Unauthenticated, msg)
}

// FailedPrecondition returns a FAILED_PRECONDITION error: the request is well
// formed but the system is not in a state that allows it.
func FailedPrecondition(msg string) error {
	return status.Error(codes.FailedPrecondition, msg)
}

// Unavailable returns a retryable UNAVAILABLE error. A positive retryAfter
// is attached as a RetryInfo detail, which the REST gateway turns into a
// Retry-After header.
func Unavailable(msg string, retryAfter time.Duration) error {
	if retryAfter <= 0 {
		return status.Error(codes.Unavailable, msg)
	}
	info := &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}
	return withDetails(codes.Unavailable, msg, info)
}

// Internal logs err with its detail and returns a bare INTERNAL error, so
// that nothing about the failure reaches the caller.
func Internal(ctx context.Context, logger *slog.Logger, err error) error {
	logger.ErrorContext(ctx, "internal error", slog.Any("error", err))
	return status.Error(codes.Internal, "internal error")
}

// FieldViolations returns the field violations carried by err, if any.
func FieldViolations(err error) []FieldViolation {
	var out []FieldViolation
	for _, d := range status.Convert(err).Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			out = append(out, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
		}
	}
	return out
}

// RetryDelay returns the retry delay that err suggests, if it carries one.
func RetryDelay(err error) (time.Duration, bool) {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

func withDetails(code codes.Code, msg string, detail protoadapt.MessageV1) error {
	st, err := status.New(code, msg).WithDetails(detail)
	if err != nil {
		// Only a detail that cannot be marshalled fails here; the code and
		// message still say what matters.
		return status.Error(code, msg)
	}
	return st.Err()
}

func quote(s string) string {
	return `"` + s + `"`
}
