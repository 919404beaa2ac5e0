package attribution

import (
	"context"
	"strings"

	"github.com/costplane/costplane/libs/apierr"
	attributionv1 "github.com/costplane/costplane/proto/gen/go/costplane/attribution/v1"
	"github.com/costplane/costplane/services/attribution/internal/category"
)

const categoryKind = "cost category"

// checkCategory converts and validates a category, asking PostgreSQL
// about its regular expressions.
func (s *Service) checkCategory(ctx context.Context, p *attributionv1.CostCategory) (
	*category.Category, error,
) {
	if p == nil {
		return nil, apierr.Invalid("category", "is required")
	}
	c := category.FromProto(p)
	vs := c.Validate()
	if len(strings.TrimSpace(c.Name)) > 200 {
		vs = append(vs, category.Violation{Field: "category.display_name",
			Description: "must be at most 200 characters"})
	}
	if len(vs) == 0 {
		bad, err := s.cats.CheckRegexes(ctx, c)
		if err != nil {
			return nil, s.toStatus(ctx, err, categoryKind, c.ID)
		}
		vs = bad
	}
	var v apierr.Violations
	for _, x := range vs {
		v.Add(x.Field, x.Description)
	}
	return c, v.Err()
}

// CreateCostCategory stores a new category.
func (s *Service) CreateCostCategory(ctx context.Context,
	req *attributionv1.CreateCostCategoryRequest,
) (*attributionv1.CreateCostCategoryResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.checkCategory(ctx, req.GetCategory())
	if err != nil {
		return nil, err
	}
	saved, err := s.cats.Create(ctx, t, c)
	if err != nil {
		return nil, s.toStatus(ctx, err, categoryKind, c.ID)
	}
	return &attributionv1.CreateCostCategoryResponse{Category: saved.Proto()}, nil
}

// GetCostCategory returns one category.
func (s *Service) GetCostCategory(ctx context.Context, req *attributionv1.GetCostCategoryRequest) (
	*attributionv1.GetCostCategoryResponse, error,
) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.cats.Get(ctx, t, req.GetCategoryId())
	if err != nil {
		return nil, s.toStatus(ctx, err, categoryKind, req.GetCategoryId())
	}
	return &attributionv1.GetCostCategoryResponse{Category: c.Proto()}, nil
}

// ListCostCategories lists the tenant's categories by id.
func (s *Service) ListCostCategories(ctx context.Context,
	req *attributionv1.ListCostCategoriesRequest,
) (*attributionv1.ListCostCategoriesResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := decodeKeyToken(req.GetPageToken(), "categories")
	if err != nil {
		return nil, err
	}
	cats, err := s.cats.List(ctx, t, after, size+1)
	if err != nil {
		return nil, s.toStatus(ctx, err, categoryKind, "")
	}
	out := &attributionv1.ListCostCategoriesResponse{}
	if len(cats) > size {
		cats = cats[:size]
		out.NextPageToken = encodeKeyToken("categories", cats[size-1].ID)
	}
	for _, c := range cats {
		out.Categories = append(out.Categories, c.Proto())
	}
	return out, nil
}

// UpdateCostCategory replaces a category; history is re-sliced at once.
func (s *Service) UpdateCostCategory(ctx context.Context,
	req *attributionv1.UpdateCostCategoryRequest,
) (*attributionv1.UpdateCostCategoryResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.checkCategory(ctx, req.GetCategory())
	if err != nil {
		return nil, err
	}
	saved, err := s.cats.Update(ctx, t, c)
	if err != nil {
		return nil, s.toStatus(ctx, err, categoryKind, c.ID)
	}
	return &attributionv1.UpdateCostCategoryResponse{Category: saved.Proto()}, nil
}

// DeleteCostCategory removes a category.
func (s *Service) DeleteCostCategory(ctx context.Context,
	req *attributionv1.DeleteCostCategoryRequest,
) (*attributionv1.DeleteCostCategoryResponse, error) {
	t, err := tenant(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.cats.Delete(ctx, t, req.GetCategoryId()); err != nil {
		return nil, s.toStatus(ctx, err, categoryKind, req.GetCategoryId())
	}
	return &attributionv1.DeleteCostCategoryResponse{}, nil
}
