package budget

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/budget/internal/budgets"
)

// toStatus is the one place where the service's errors become gRPC
// statuses. id names the budget the call was about; errors it does not
// know are logged and answered with a bare INTERNAL.
func (s *Service) toStatus(ctx context.Context, err error, id string) error {
	if _, ok := status.FromError(err); ok {
		return err // already an API error, such as a validation failure
	}

	var (
		pgErr       *pgconn.PgError
		unsupported *unsupportedFilterError
	)
	switch {
	case errors.Is(err, budgets.ErrNotFound):
		return apierr.NotFound("budget", id)
	case errors.Is(err, budgets.ErrExists):
		return apierr.AlreadyExists("budget", id)
	case errors.Is(err, budgets.ErrRevision):
		return status.Error(codes.Aborted, "budget "+id+
			" changed since it was read: read it again and retry with its revision")
	case errors.Is(err, errNoPerspectives):
		return apierr.Invalid("budget.scope.perspective_id", err.Error())
	case errors.Is(err, errPerspectiveNotFound):
		return apierr.Invalid("budget.scope.perspective_id", "no such perspective")
	case errors.As(err, &unsupported):
		return apierr.Invalid("budget.scope.perspective_id", unsupported.Error())
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &pgErr) && pgErr.Code == "57014": // query_canceled
		return status.Error(codes.DeadlineExceeded, "the request took too long")
	case errors.Is(err, context.Canceled):
		return status.FromContextError(err).Err()
	}
	return apierr.Internal(ctx, s.log, err)
}
