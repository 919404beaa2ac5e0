package apierr_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/apierr"
)

func TestInvalidNamesEveryField(t *testing.T) {
	var v apierr.Violations
	if err := v.Err(); err != nil {
		t.Fatalf("empty Violations.Err() = %v, want nil", err)
	}
	v.Add("events[3].event_id", "must not be empty")
	v.Add("events[4].quantities[0].amount", "must not be negative")
	err := v.Err()

	if got := status.Code(err); got != codes.InvalidArgument {
		t.Errorf("code = %s, want InvalidArgument", got)
	}
	want := []apierr.FieldViolation{
		{Field: "events[3].event_id", Description: "must not be empty"},
		{Field: "events[4].quantities[0].amount", Description: "must not be negative"},
	}
	if diff := cmp.Diff(want, apierr.FieldViolations(err)); diff != "" {
		t.Errorf("violations mismatch (-want +got):\n%s", diff)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "events[3].event_id") {
		t.Errorf("message %q does not name the field", msg)
	}
}

func TestCodes(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{apierr.Invalid("tenant_id", "must not be empty"), codes.InvalidArgument},
		{apierr.NotFound("tenant", "acme"), codes.NotFound},
		{apierr.AlreadyExists("tenant", "acme"), codes.AlreadyExists},
		{apierr.PermissionDenied("no"), codes.PermissionDenied},
		{apierr.Unauthenticated("no"), codes.Unauthenticated},
		{apierr.FailedPrecondition("no"), codes.FailedPrecondition},
		{apierr.Unavailable("later", time.Second), codes.Unavailable},
		{apierr.Unavailable("later", 0), codes.Unavailable},
	}
	for _, tt := range tests {
		if got := status.Code(tt.err); got != tt.want {
			t.Errorf("%v: code = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestUnavailableCarriesRetryDelay(t *testing.T) {
	d, ok := apierr.RetryDelay(apierr.Unavailable("kafka is down", 3*time.Second))
	if !ok || d != 3*time.Second {
		t.Errorf("RetryDelay = %s, %t; want 3s, true", d, ok)
	}
	if _, ok := apierr.RetryDelay(apierr.Unavailable("x", 0)); ok {
		t.Errorf("RetryDelay of an error without delay reported one")
	}
}

func TestInternalHidesDetail(t *testing.T) {
	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	err := apierr.Internal(context.Background(), logger, errors.New("pq: password=hunter2"))

	st := status.Convert(err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "hunter2") {
		t.Errorf("Internal = %v; want a bare INTERNAL", err)
	}
	if !strings.Contains(logged.String(), "hunter2") {
		t.Errorf("the detail was not logged: %s", logged.String())
	}
}
