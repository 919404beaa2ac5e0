package admin

import (
	"context"
	"errors"

	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
)

// errNotOperator means the caller needs an operator key.
var errNotOperator = errors.New("operator key required")

// toStatus is the one place where the service's errors become gRPC
// statuses. name is the tenant or key the failed step was about; errors it
// does not know are logged and answered with a bare INTERNAL.
func (s *Service) toStatus(ctx context.Context, err error, name string) error {
	if _, ok := status.FromError(err); ok {
		return err // Already an API error, such as a validation failure.
	}

	switch {
	case errors.Is(err, auth.ErrTenantNotFound):
		return apierr.NotFound("tenant", name)
	case errors.Is(err, auth.ErrKeyNotFound):
		return apierr.NotFound("api key", name)
	case errors.Is(err, auth.ErrTenantExists):
		return apierr.AlreadyExists("tenant", name)
	case errors.Is(err, errNotOperator):
		return apierr.PermissionDenied("only operator admin keys can do this")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}

	return apierr.Internal(ctx, s.logger, err)
}
