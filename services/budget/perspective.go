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

// Categories reads the definition of an attribution cost category, for
// scopes that filter by its buckets (category:<id>).
type Categories interface {
	Category(ctx context.Context, categoryID string) (*scope.Category, error)
}

// Errors of perspective and category resolution, which become field
// violations.
var (
	errNoPerspectives = errors.New(
		"perspectives cannot be resolved: BUDGET_ATTRIBUTION_ENDPOINT is not set")
	errPerspectiveNotFound = errors.New("perspective not found")
	errNoCategories        = errors.New(
		"cost categories cannot be resolved: BUDGET_ATTRIBUTION_ENDPOINT is not set")
	errCategoryNotFound = errors.New("cost category not found")
)

// unsupportedFilterError means a perspective filters by something budgets
// cannot track.
type unsupportedFilterError struct{ what string }

func (e *unsupportedFilterError) Error() string {
	return "the perspective filters by " + e.what + ", which budgets cannot track"
}

// attributionPerspectives asks the attribution service over gRPC, with the
// caller's credentials, so that perspectives and categories are read as
// the caller's tenant. It implements Perspectives and Categories.
type attributionPerspectives struct {
	client     attributionv1.PerspectiveServiceClient
	categories attributionv1.CostCategoryServiceClient
	keyHeader  string
}

// NewPerspectives returns a resolver calling attribution on conn.
// keyHeader is the alternative API key header forwarded with
// authorization. The resolver also implements Categories, which New uses
// when Deps.Categories is nil.
func NewPerspectives(conn grpc.ClientConnInterface, keyHeader string) Perspectives {
	return newAttribution(conn, keyHeader)
}

// NewCategories returns a category resolver calling attribution on conn.
func NewCategories(conn grpc.ClientConnInterface, keyHeader string) Categories {
	return newAttribution(conn, keyHeader)
}

func newAttribution(conn grpc.ClientConnInterface, keyHeader string) *attributionPerspectives {
	return &attributionPerspectives{
		client:     attributionv1.NewPerspectiveServiceClient(conn),
		categories: attributionv1.NewCostCategoryServiceClient(conn),
		keyHeader:  keyHeader,
	}
}

// outgoing forwards the caller's API key.
func (a *attributionPerspectives) outgoing(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for _, k := range []string{"authorization", a.keyHeader} {
		if v := in.Get(k); k != "" && len(v) > 0 {
			out.Set(k, v...)
		}
	}
	return metadata.NewOutgoingContext(ctx, out)
}

func (a *attributionPerspectives) Filters(ctx context.Context, id, currency string) (
	[]scope.Filter, error,
) {
	resp, err := a.client.GetPerspective(a.outgoing(ctx),
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
// refused; a category filter becomes a category:<id> filter, whose rules
// the caller resolves; token-type filters cannot be tracked, since a
// budget counts whole events.
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
			out = append(out, scope.Filter{Dimension: scope.CategoryPrefix + ref.GetCategoryId(),
				Include: f.GetInclude(), Exclude: f.GetExclude()})
			continue
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

func (a *attributionPerspectives) Category(ctx context.Context, id string) (
	*scope.Category, error,
) {
	resp, err := a.categories.GetCostCategory(a.outgoing(ctx),
		&attributionv1.GetCostCategoryRequest{CategoryId: id})
	if status.Code(err) == codes.NotFound {
		return nil, errCategoryNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading cost category %s: %w", id, err)
	}
	return categoryFromProto(resp.GetCategory()), nil
}

// defaultBucket is attribution's bucket for cost no rule matches, when a
// category names none.
const defaultBucket = "Unattributed"

// categoryFromProto converts a category. A condition on a dimension
// budgets cannot test keeps a name that scope.ValidateCategory refuses.
func categoryFromProto(pb *attributionv1.CostCategory) *scope.Category {
	c := &scope.Category{ID: pb.GetCategoryId(), Revision: pb.GetRevision(),
		Default: pb.GetDefaultBucket()}
	if c.Default == "" {
		c.Default = defaultBucket
	}
	for _, r := range pb.GetRules() {
		rule := scope.CategoryRule{Bucket: r.GetBucket()}
		for _, cond := range r.GetConditions() {
			rule.Conditions = append(rule.Conditions, scope.Condition{
				Dimension: conditionDimension(cond.GetDimension()),
				Operator:  scope.Operator(cond.GetOperator()),
				Values:    cond.GetValues(),
			})
		}
		c.Rules = append(c.Rules, rule)
	}
	for _, sp := range pb.GetSplits() {
		split := scope.Split{Bucket: sp.GetBucket(), Targets: sp.GetTargetBuckets()}
		if sp.GetMethod() == attributionv1.SplitMethod_SPLIT_METHOD_FIXED {
			split.Targets = nil
			for _, sh := range sp.GetShares() {
				split.Targets = append(split.Targets, sh.GetBucket())
			}
		}
		c.Splits = append(c.Splits, split)
	}
	return c
}

func conditionDimension(ref *attributionv1.DimensionRef) string {
	switch d := ref.GetDimension(); d {
	case attributionv1.Dimension_DIMENSION_LABEL:
		return scope.LabelPrefix + ref.GetLabelKey()
	case attributionv1.Dimension_DIMENSION_CURRENCY:
		return scope.CurrencyDimension
	default:
		if name, ok := dimensionNames[d]; ok {
			return name
		}
		return strings.ToLower(strings.TrimPrefix(d.String(), "DIMENSION_"))
	}
}
