package budget

import (
	"context"
	"errors"
	"strings"

	"github.com/costplane/costplane/libs/apierr"
	"github.com/costplane/costplane/services/budget/internal/scope"
)

// scopeFilter is a filter of a scope with the request field it came from,
// so that a problem with its category names that field.
type scopeFilter struct {
	scope.Filter
	field string
}

// resolveCategories reads the definition of every cost category that
// filters name and checks that budgets can evaluate it per event: its
// conditions must test dimensions the service keeps, and the buckets
// selected must take no part in a shared-cost split. Problems are field
// violations; a failure to reach attribution is returned as is.
//
// TODO: the definitions are copied when the budget is written, so an edit
// of the category applies at the budget's next update; a background
// re-resolution needs a service identity to call attribution with, which
// auth does not provide yet. Safe for now: the copy is what the budget
// was approved on, and an update re-slices its history.
//
// TODO: buckets in shared-cost splits are refused, not tracked: a split
// is computed over a time bucket's totals, which a per-event counter
// would have to re-split on every event. Safe: refused with the field
// named, never approximated.
func (s *Service) resolveCategories(ctx context.Context, filters []scopeFilter) (
	[]scope.Category, error,
) {
	var (
		v    apierr.Violations
		out  []scope.Category
		byID = make(map[string]*scope.Category)
	)
	for _, f := range filters {
		id, ok := strings.CutPrefix(f.Dimension, scope.CategoryPrefix)
		if !ok {
			continue
		}
		if s.categories == nil {
			v.Add(f.field, errNoCategories.Error())
			continue
		}
		c := byID[id]
		if c == nil {
			var err error
			c, err = s.categories.Category(ctx, id)
			if errors.Is(err, errCategoryNotFound) {
				v.Add(f.field, "no such cost category: "+id)
				continue
			}
			if err != nil {
				return nil, err
			}
			byID[id] = c
			for _, reason := range scope.ValidateCategory(c, s.keys) {
				v.Add(f.field, "cost category "+id+" "+reason)
			}
			out = append(out, *c)
		}
		if err := c.CheckSplits(f.Filter); err != nil {
			v.Add(f.field, err.Error()+"; budgets cannot track split cost per event")
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
