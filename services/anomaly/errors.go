package anomaly

import (
	"context"
	"errors"

	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/anomaly/internal/alert"
)

// toStatus is the one place where the service's errors become gRPC
// statuses. name is what the failed call was about; errors it does not
// know are logged and answered with a bare INTERNAL.
func (s *Service) toStatus(ctx context.Context, err error, name string) error {
	if _, ok := status.FromError(err); ok {
		return err // already an API error, such as a validation failure
	}

	switch {
	case errors.Is(err, alert.ErrNotFound):
		return apierr.NotFound("anomaly", name)
	case errors.Is(err, alert.ErrSuppressionNotFound):
		return apierr.NotFound("suppression", name)
	case errors.Is(err, alert.ErrTransition):
		return apierr.FailedPrecondition(err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}

	return apierr.Internal(ctx, s.log, err)
}
