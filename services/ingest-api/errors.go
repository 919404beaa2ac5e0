package ingestapi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/usage"
)

// This file is where the service's failures become gRPC statuses.

// Bounds on what one rejection carries. A batch of a thousand broken items
// would otherwise make trailers of megabytes, which HTTP/2 peers refuse.
const (
	maxDetailViolations  = 100
	maxMessageViolations = 5
)

// checkLimits rejects a request that is too long or too large before any
// item is looked at. Both answers are INVALID_ARGUMENT rather than
// RESOURCE_EXHAUSTED, which REST maps to 429 and clients retry unchanged.
func (s *Service) checkLimits(kind, field string, n, size int) error {
	if n > s.cfg.MaxBatch {
		s.metrics.reject(kind, reasonTooMany, n)
		return apierr.Invalid(field, fmt.Sprintf(
			"has %d entries; the limit is %d per request: split the batch", n, s.cfg.MaxBatch))
	}
	if size > s.cfg.MaxRequestBytes {
		s.metrics.reject(kind, reasonTooLarge, n)
		return apierr.Invalid(field, fmt.Sprintf(
			"the request is %d bytes as protobuf; the limit is %d bytes: split the batch",
			size, s.cfg.MaxRequestBytes))
	}
	return nil
}

// rejectBatch counts a failed batch and returns the INVALID_ARGUMENT that
// lists its problems. Its message says that nothing of the batch was kept.
func (s *Service) rejectBatch(ctx context.Context, kind string, b *batch) error {
	bad := b.badItems()
	for reason, n := range b.bad {
		s.metrics.reject(kind, reason, n)
	}
	s.metrics.reject(kind, reasonBatchRejected, b.size-bad)

	return batchError(b, bad)
}

func batchError(b *batch, bad int) error {
	msg := fmt.Sprintf("%d of %d %s invalid; the whole batch was rejected and nothing was "+
		"published: %s", bad, b.size, b.field, summary(b.errs))

	st, err := status.New(codes.InvalidArgument, msg).WithDetails(badRequest(b))
	if err != nil {
		// Only a detail that cannot be encoded fails; the message still
		// names the first problems.
		return status.Error(codes.InvalidArgument, msg)
	}
	return st.Err()
}

// badRequest lists the batch's problems as field violations, the last one
// saying how many were left out.
func badRequest(b *batch) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	add := func(field, desc string) {
		br.FieldViolations = append(br.FieldViolations,
			&errdetails.BadRequest_FieldViolation{Field: field, Description: desc})
	}
	for i, e := range b.errs {
		if i == maxDetailViolations {
			add(b.field, fmt.Sprintf("%d more problems not listed", len(b.errs)-i))
			break
		}
		add(e.Field, e.Reason)
	}
	return br
}

// summary renders the first problems for the status message.
func summary(errs usage.FieldErrors) string {
	parts := make([]string, 0, maxMessageViolations+1)
	for i, e := range errs {
		if i == maxMessageViolations {
			parts = append(parts, fmt.Sprintf("and %d more", len(errs)-i))
			break
		}
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

// unavailable is the retryable answer when Kafka did not take a batch.
func unavailable(kind string, retryAfter time.Duration) error {
	return apierr.Unavailable(fmt.Sprintf("cannot publish %s right now and nothing of the "+
		"batch is confirmed; retry the same batch later (ids make the retry safe)", kind),
		retryAfter)
}

// internal counts a batch lost to an unexpected failure, logs the failure
// and returns a bare INTERNAL.
func (s *Service) internal(ctx context.Context, kind string, n int, err error) error {
	s.metrics.reject(kind, reasonPublishFailed, n)
	return apierr.Internal(ctx, s.log, fmt.Errorf("publishing %d %s items: %w", n, kind, err))
}
