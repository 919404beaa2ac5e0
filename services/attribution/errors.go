package attribution

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/attribution/internal/detail"
	"github.com/costplane/costplane/services/attribution/internal/docs"
	"github.com/costplane/costplane/services/attribution/internal/explore"
)

// toStatus is the one place where the service's errors become gRPC
// statuses. kind and name say what the failed call was about ("run",
// its id); errors it does not know are logged and answered with a bare
// INTERNAL.
func (s *Service) toStatus(ctx context.Context, err error, kind, name string) error {
	if _, ok := status.FromError(err); ok {
		return err // already an API error, such as a validation failure
	}

	var (
		invalid *explore.InvalidError
		missing *explore.MissingCategoryError
		pgErr   *pgconn.PgError
	)
	switch {
	case errors.As(err, &invalid):
		return apierr.Invalid(invalid.Field, invalid.Reason)
	case errors.As(err, &missing):
		return apierr.NotFound("cost category", missing.ID)
	case errors.Is(err, docs.ErrNotFound), errors.Is(err, detail.ErrNotFound):
		return apierr.NotFound(kind, name)
	case errors.Is(err, docs.ErrExists):
		return apierr.AlreadyExists(kind, name)
	case errors.Is(err, docs.ErrRevision):
		return status.Error(codes.Aborted, kind+" "+name+
			" changed since it was read: read it again and retry with its revision")
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &pgErr) && pgErr.Code == "57014": // query_canceled
		return status.Error(codes.DeadlineExceeded, "the query took too long; narrow it")
	case errors.Is(err, context.Canceled):
		return status.FromContextError(err).Err()
	}
	return apierr.Internal(ctx, s.log, err)
}
