package scope

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Filter keeps spend whose value of one dimension is in Include (when
// Include is not empty) and not in Exclude.
type Filter struct {
	Dimension string   `json:"dimension"`
	Include   []string `json:"include,omitempty"`
	Exclude   []string `json:"exclude,omitempty"`
}

// Limits of a scope, so that a budget stays cheap to match on the hot
// path.
const (
	MaxFilters      = 32
	MaxValues       = 1000
	maxValueLength  = 512
	maxLabelKeySize = 128
)

// categoryIDPattern is the attribution service's category id syntax.
var categoryIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// FilterError is a problem with one filter of a scope. Field is relative
// to the filter list, such as "filters[2].dimension".
type FilterError struct {
	Field  string
	Reason string
	Err    error
}

func (e *FilterError) Error() string { return e.Field + ": " + e.Reason }

func (e *FilterError) Unwrap() error { return e.Err }

// Validate checks filters and returns every problem found.
func Validate(filters []Filter, keys LabelKeys) []*FilterError {
	var errs []*FilterError
	add := func(i int, field, reason string, err error) {
		errs = append(errs, &FilterError{
			Field: fmt.Sprintf("filters[%d].%s", i, field), Reason: reason, Err: err,
		})
	}
	if len(filters) > MaxFilters {
		errs = append(errs, &FilterError{
			Field: "filters", Reason: fmt.Sprintf("at most %d filters", MaxFilters),
		})
	}

	seen := make(map[string]int, len(filters))
	for i, f := range filters {
		r, err := ParseRef(f.Dimension)
		switch {
		case err != nil:
			add(i, "dimension", fmt.Sprintf("unknown dimension %q; want one of %s, "+
				"label:<key> or category:<category_id>", f.Dimension, strings.Join(Names(), ", ")),
				err)
		case r.IsCategory() && !categoryIDPattern.MatchString(r.Category):
			add(i, "dimension", fmt.Sprintf("%q is not a cost category id", r.Category), nil)
		case r.IsLabel() && len(r.Label) > maxLabelKeySize:
			add(i, "dimension", "label key too long", nil)
		case r.IsLabel() && !keys.Tracks(r.Label):
			add(i, "dimension", fmt.Sprintf("label %q is not among the tracked label keys",
				r.Label), ErrUntrackedLabel)
		}
		if j, dup := seen[f.Dimension]; dup && err == nil {
			add(i, "dimension", fmt.Sprintf("repeats filters[%d]; merge them", j), nil)
		}
		seen[f.Dimension] = i

		if len(f.Include)+len(f.Exclude) == 0 {
			add(i, "include", "a filter needs include or exclude values", nil)
		}
		if len(f.Include)+len(f.Exclude) > MaxValues {
			add(i, "include", fmt.Sprintf("at most %d values per filter", MaxValues), nil)
		}
		for _, v := range f.Include {
			if slices.Contains(f.Exclude, v) {
				add(i, "exclude", fmt.Sprintf("value %q is both included and excluded", v), nil)
			}
			if len(v) > maxValueLength {
				add(i, "include", "value too long", nil)
			}
		}
	}
	return errs
}

// Normalize returns filters with sorted, deduplicated values and sorted by
// dimension, so that equal scopes compare and store equally.
func Normalize(filters []Filter) []Filter {
	out := make([]Filter, 0, len(filters))
	for _, f := range filters {
		out = append(out, Filter{
			Dimension: f.Dimension,
			Include:   sortedSet(f.Include),
			Exclude:   sortedSet(f.Exclude),
		})
	}
	slices.SortFunc(out, func(a, b Filter) int { return strings.Compare(a.Dimension, b.Dimension) })
	return out
}

func sortedSet(vs []string) []string {
	if len(vs) == 0 {
		return nil
	}
	out := slices.Clone(vs)
	slices.Sort(out)
	return slices.Compact(out)
}

// Matcher is a compiled scope. The zero Matcher matches everything.
type Matcher struct {
	tests []test
}

type test struct {
	ref     Ref
	cat     *compiledCategory   // set when ref names a category
	include map[string]struct{} // nil: no include list
	exclude map[string]struct{}
}

// Env is what a scope is compiled with: the definitions of the cost
// categories its filters name, and the currency of the spend it will be
// matched against, which decides category conditions on currency.
type Env struct {
	Categories []Category
	Currency   string
}

// ErrUnknownCategory means a filter names a category Env does not define.
var ErrUnknownCategory = errors.New("cost category not defined")

// Compile builds the matcher of filters, which must have passed Validate.
func Compile(filters []Filter, env Env) (Matcher, error) {
	m := Matcher{tests: make([]test, 0, len(filters))}
	for _, f := range filters {
		r, err := ParseRef(f.Dimension)
		if err != nil {
			return Matcher{}, fmt.Errorf("compiling scope: %w", err)
		}
		t := test{ref: r, include: set(f.Include), exclude: set(f.Exclude)}
		if r.IsCategory() {
			i := slices.IndexFunc(env.Categories, func(c Category) bool {
				return c.ID == r.Category
			})
			if i < 0 {
				return Matcher{}, fmt.Errorf("compiling scope: %s: %w", r.Category,
					ErrUnknownCategory)
			}
			if t.cat, err = compileCategory(&env.Categories[i], env.Currency); err != nil {
				return Matcher{}, fmt.Errorf("compiling scope: %w", err)
			}
		}
		m.tests = append(m.tests, t)
	}
	return m, nil
}

func set(vs []string) map[string]struct{} {
	if len(vs) == 0 {
		return nil
	}
	s := make(map[string]struct{}, len(vs))
	for _, v := range vs {
		s[v] = struct{}{}
	}
	return s
}

// Match reports whether a is in the scope.
func (m *Matcher) Match(a *Attrs) bool {
	for i := range m.tests {
		t := &m.tests[i]
		var v string
		if t.cat != nil {
			v = t.cat.bucket(a)
		} else {
			v = a.Get(t.ref)
		}
		if t.include != nil {
			if _, ok := t.include[v]; !ok {
				return false
			}
		}
		if _, ok := t.exclude[v]; ok {
			return false
		}
	}
	return true
}

// Dimensions returns the scope as dimension = values, the form of an
// alert's scope: included values joined by commas, excluded ones under
// "!<dimension>".
func Dimensions(filters []Filter) map[string]string {
	out := make(map[string]string, len(filters))
	for _, f := range filters {
		if len(f.Include) > 0 {
			out[f.Dimension] = strings.Join(f.Include, ",")
		}
		if len(f.Exclude) > 0 {
			out["!"+f.Dimension] = strings.Join(f.Exclude, ",")
		}
	}
	return out
}
