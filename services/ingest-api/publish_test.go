package ingestapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ingestv1 "github.com/costplane/costplane/proto/gen/go/costplane/ingest/v1"

	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/libs/kafka"
	"github.com/costplane/costplane/libs/log"
)

// failingProducer fails every produce with err.
type failingProducer struct{ err error }

func (p failingProducer) Produce(context.Context, ...*kgo.Record) error { return p.err }

// TestPublishFailures checks how produce failures become statuses; the
// tests on kfake cover a broker that is really down.
func TestPublishFailures(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		want    codes.Code
		message string
	}{{
		name: "kafka unavailable",
		err:  fmt.Errorf("producing: %w: %w", kafka.ErrUnavailable, context.DeadlineExceeded),
		want: codes.Unavailable, message: "retry the same batch later",
	}, {
		name: "anything else is internal, without detail",
		err:  errors.New("MESSAGE_TOO_LARGE: the broker said no"),
		want: codes.Internal, message: "internal error",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := testService(t, failingProducer{tt.err})
			ctx := auth.NewContext(context.Background(), auth.Principal{TenantID: "acme"})
			_, err := svc.ReportUsage(ctx, &ingestv1.ReportUsageRequest{Events: events(2)})

			st := status.Convert(err)
			if st.Code() != tt.want || st.Message() == "" {
				t.Fatalf("ReportUsage = %v, want %v", err, tt.want)
			}
			if got := st.Message(); !strings.Contains(got, tt.message) {
				t.Errorf("message %q does not contain %q", got, tt.message)
			}
		})
	}
}

func TestNoPrincipalIsUnauthenticated(t *testing.T) {
	svc := testService(t, failingProducer{})
	_, err := svc.ReportOutcomes(context.Background(), &ingestv1.ReportOutcomesRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ReportOutcomes without a principal = %v, want UNAUTHENTICATED", err)
	}
}

func testService(t *testing.T, p Producer) *Service {
	t.Helper()
	cfg := Config{MaxBatch: 10, MaxRequestBytes: 1 << 20, RetryAfter: 2 * time.Second}
	svc, err := New(cfg, Deps{
		Logger: log.Discard(), Producer: p, Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return svc
}
