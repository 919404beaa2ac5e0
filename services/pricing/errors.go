package pricing

import (
	"context"
	"errors"

	"google.golang.org/grpc/status"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/libs/auth"
	"github.com/costplane/costplane/services/pricing/internal/rates"
	"github.com/costplane/costplane/services/pricing/internal/reprice"
)

// toStatus is the one place where the service's errors become gRPC
// statuses. name is the rate or reprice the failed step was about; errors
// it does not know are logged and answered with a bare INTERNAL.
func (s *Service) toStatus(ctx context.Context, err error, name string) error {
	if _, ok := status.FromError(err); ok {
		return err // Already an API error, such as a validation failure.
	}

	var overlap *rates.OverlapError
	switch {
	case errors.As(err, &overlap):
		return apierr.Invalid("rate.valid_from", overlap.Error())
	case errors.Is(err, rates.ErrNotFound):
		return apierr.NotFound("rate", name)
	case errors.Is(err, reprice.ErrNotFound):
		return apierr.NotFound("reprice", name)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}

	return apierr.Internal(ctx, s.log, err)
}

// caller returns the authenticated principal. Its absence means the server
// was built without the authenticator, so the call is refused.
func caller(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return auth.Principal{}, apierr.Unauthenticated("missing API key")
	}
	return p, nil
}
