package budget

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"

	"github.com/costplane/costplane/services/budget/internal/scope"
)

// Perspectives resolves an attribution perspective into scope filters.
type Perspectives interface {
	Filters(ctx context.Context, perspectiveID, currency string) ([]scope.Filter, error)
}

// Errors of perspective resolution, which become field violations.
var (
	errNoPerspectives = errors.New(
		"perspectives cannot be resolved: BUDGET_ATTRIBUTION_ENDPOINT is not set")
	errPerspectiveNotFound = errors.New("perspective not found")
)

// unsupportedFilterError means a perspective filters by something budgets
// cannot track.
type unsupportedFilterError struct{ what string }

func (e *unsupportedFilterError) Error() string {
	return "the perspective filters by " + e.what + ", which budgets cannot track"
}

// attributionPerspectives asks the attribution service over gRPC, with the
// caller's credentials, so the perspective is read as the caller's tenant.
type attributionPerspectives struct {
	client    attributionv1.PerspectiveServiceClient
	keyHeader string
}

// NewPerspectives returns a resolver calling attribution on conn.
// keyHeader is the alternative API key header forwarded with
// authorization.
func NewPerspectives(conn grpc.ClientConnInterface, keyHeader string) Perspectives {
	return &attributionPerspectives{
		client: attributionv1.NewPerspectiveServiceClient(conn), keyHeader: keyHeader,
	}
}

func (a *attributionPerspectives) Filters(ctx context.Context, id, currency string) (
	[]scope.Filter, error,
) {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for _, k := range []string{"authorization", a.keyHeader} {
		if v := in.Get(k); k != "" && len(v) > 0 {
			out.Set(k, v...)
		}
	}
	resp, err := a.client.GetPerspective(metadata.NewOutgoingContext(ctx, out),
		&attributionv1.GetPerspectiveRequest{PerspectiveId: id})
	if status.Code(err) == codes.NotFound {
		return nil, errPerspectiveNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading perspective %s: %w", id, err)
	}
	return perspectiveFilters(resp.GetPerspective().GetQuery().GetFilters(), currency)
}

// dimensionNames maps attribution's dimensions to scope dimension names.
var dimensionNames = map[attributionv1.Dimension]string{
	attributionv1.Dimension_DIMENSION_PROVIDER:          "provider",
	attributionv1.Dimension_DIMENSION_ACCOUNT:           "account",
	attributionv1.Dimension_DIMENSION_PROJECT:           "project",
	attributionv1.Dimension_DIMENSION_MODEL:             "model",
	attributionv1.Dimension_DIMENSION_MODEL_VERSION:     "model_version",
	attributionv1.Dimension_DIMENSION_REGION:            "region",
	attributionv1.Dimension_DIMENSION_SERVICE_TIER:      "service_tier",
	attributionv1.Dimension_DIMENSION_INFERENCE_PROFILE: "inference_profile",
	attributionv1.Dimension_DIMENSION_OPERATION:         "operation",
	attributionv1.Dimension_DIMENSION_APP:               "app",
	attributionv1.Dimension_DIMENSION_AGENT:             "agent",
	attributionv1.Dimension_DIMENSION_AGENT_NAME:        "agent_name",
	attributionv1.Dimension_DIMENSION_AGENT_VERSION:     "agent_version",
	attributionv1.Dimension_DIMENSION_CUSTOMER:          "customer",
	attributionv1.Dimension_DIMENSION_ENVIRONMENT:       "environment",
	attributionv1.Dimension_DIMENSION_SOURCE:            "source",
}

// perspectiveFilters converts a perspective's filters. A currency filter
// is satisfied by the budget's currency or makes the scope empty, which is
// refused; category and token-type filters cannot be tracked per event
// tuple yet.
func perspectiveFilters(fs []*attributionv1.Filter, currency string) ([]scope.Filter, error) {
	var out []scope.Filter
	for _, f := range fs {
		ref := f.GetDimension()
		switch d := ref.GetDimension(); d {
		case attributionv1.Dimension_DIMENSION_CURRENCY:
			if !currencyPasses(f, currency) {
				return nil, &unsupportedFilterError{
					what: "a currency that excludes the budget's own (" + currency + ")"}
			}
			continue
		case attributionv1.Dimension_DIMENSION_LABEL:
			out = append(out, scope.Filter{Dimension: scope.LabelPrefix + ref.GetLabelKey(),
				Include: f.GetInclude(), Exclude: f.GetExclude()})
			continue
		case attributionv1.Dimension_DIMENSION_CATEGORY:
			// TODO: evaluate cost category rules per tuple; until then a
			// perspective sliced by category is refused, never
			// approximated.
			return nil, &unsupportedFilterError{what: "cost category " + ref.GetCategoryId()}
		default:
			name, ok := dimensionNames[d]
			if !ok {
				return nil, &unsupportedFilterError{
					what: strings.ToLower(strings.TrimPrefix(d.String(), "DIMENSION_"))}
			}
			out = append(out, scope.Filter{Dimension: name, Include: f.GetInclude(),
				Exclude: f.GetExclude()})
		}
	}
	return scope.Normalize(out), nil
}

func currencyPasses(f *attributionv1.Filter, currency string) bool {
	for _, c := range f.GetExclude() {
		if c == currency {
			return false
		}
	}
	if len(f.GetInclude()) == 0 {
		return true
	}
	for _, c := range f.GetInclude() {
		if c == currency {
			return true
		}
	}
	return false
}
