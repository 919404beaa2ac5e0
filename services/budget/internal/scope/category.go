package scope

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// CategoryPrefix starts the dimension name of a cost category's bucket:
// category:<category_id>, filtered by bucket names.
const CategoryPrefix = "category:"

// CurrencyDimension may be tested by a category rule, though it is not a
// dimension of Attrs: a budget only ever counts spend in its own
// currency, so the condition is decided when the scope is compiled.
const CurrencyDimension = "currency"

// Operator compares a value with a condition's values; the values match
// costplane.attribution.v1.ConditionOperator.
type Operator int

// The operators.
const (
	OpIn     Operator = 1
	OpNotIn  Operator = 2
	OpPrefix Operator = 3
	OpRegex  Operator = 4
	OpExists Operator = 5
)

// Condition tests one dimension: a plain one, label:<key>, or currency.
type Condition struct {
	Dimension string   `json:"dimension"`
	Operator  Operator `json:"operator"`
	Values    []string `json:"values,omitempty"`
}

// CategoryRule puts spend matching all its conditions in Bucket.
type CategoryRule struct {
	Bucket     string      `json:"bucket"`
	Conditions []Condition `json:"conditions"`
}

// Split is a shared bucket whose cost the category spreads over Targets,
// or over every bucket that is not shared when Targets is empty.
type Split struct {
	Bucket  string   `json:"bucket"`
	Targets []string `json:"targets,omitempty"`
}

// Category is a cost category as the attribution service defines it,
// copied into the budget that filters by it: ordered rules, the first
// that matches deciding the bucket, and a default bucket for the rest.
type Category struct {
	ID       string         `json:"id"`
	Revision int64          `json:"revision"`
	Rules    []CategoryRule `json:"rules"`
	Default  string         `json:"default"`
	Splits   []Split        `json:"splits,omitempty"`
}

// ErrSplitBucket means a filter selects a bucket that a shared-cost split
// moves cost out of or into. Splits are computed over totals per time
// bucket, so no single event's share is known when it is counted.
var ErrSplitBucket = errors.New("bucket takes part in a shared-cost split")

// CheckSplits returns an error when f, a filter on c, selects a bucket
// that a split of c involves.
func (c *Category) CheckSplits(f Filter) error {
	if len(c.Splits) == 0 {
		return nil
	}
	if len(f.Include) == 0 {
		// Everything but the excluded buckets: some split target is in.
		return fmt.Errorf("excluding buckets of %s keeps split buckets in: %w", c.ID,
			ErrSplitBucket)
	}
	shared := make(map[string]bool, len(c.Splits))
	for _, s := range c.Splits {
		shared[s.Bucket] = true
	}
	for _, b := range f.Include {
		for _, s := range c.Splits {
			if b == s.Bucket || (len(s.Targets) == 0 && !shared[b]) ||
				slices.Contains(s.Targets, b) {
				return fmt.Errorf("bucket %q of %s: %w", b, c.ID, ErrSplitBucket)
			}
		}
	}
	return nil
}

// ValidateCategory returns the reasons c cannot be evaluated on the
// dimensions the service keeps.
func ValidateCategory(c *Category, keys LabelKeys) []string {
	var out []string
	for i, r := range c.Rules {
		for j, cond := range r.Conditions {
			if reason := cond.check(keys); reason != "" {
				out = append(out, fmt.Sprintf("rules[%d].conditions[%d]: %s", i, j, reason))
			}
		}
	}
	return out
}

func (cond *Condition) check(keys LabelKeys) string {
	if cond.Dimension != CurrencyDimension {
		r, err := ParseRef(cond.Dimension)
		switch {
		case err != nil || r.IsCategory():
			return fmt.Sprintf("dimension %q cannot be tested by budgets", cond.Dimension)
		case r.IsLabel() && !keys.Tracks(r.Label):
			return fmt.Sprintf("label %q is not among the tracked label keys", r.Label)
		}
	}
	switch cond.Operator {
	case OpIn, OpNotIn, OpPrefix:
		if len(cond.Values) == 0 {
			return "no values"
		}
	case OpRegex:
		if len(cond.Values) != 1 {
			return "a regex condition needs exactly one expression"
		}
		if _, err := regexp.Compile(cond.Values[0]); err != nil {
			return fmt.Sprintf("regular expression %q is not supported: %v", cond.Values[0], err)
		}
	case OpExists:
	default:
		return "unknown operator"
	}
	return ""
}

// compiledCategory evaluates a category's rules on Attrs.
//
// TODO: regular expressions run on Go's RE2, where attribution runs them
// on PostgreSQL's; constructs RE2 lacks are refused by ValidateCategory,
// but a few escapes mean different things (\b is a word boundary in RE2
// and a backspace in PostgreSQL). Safe for the common case of anchors,
// classes and alternations, which the two read alike.
type compiledCategory struct {
	rules []compiledRule
	def   string
}

type compiledRule struct {
	bucket string
	conds  []compiledCond
}

// compiledCond is one condition. A currency condition is decided at
// compile time: decided is then set and always holds the answer.
type compiledCond struct {
	ref      Ref
	op       Operator
	set      map[string]struct{}
	prefixes []string
	re       *regexp.Regexp
	decided  bool
	answer   bool
}

func compileCategory(c *Category, currency string) (*compiledCategory, error) {
	cc := &compiledCategory{def: c.Default}
	for _, r := range c.Rules {
		cr := compiledRule{bucket: r.Bucket}
		for _, cond := range r.Conditions {
			k, err := compileCond(cond, currency)
			if err != nil {
				return nil, fmt.Errorf("category %s: %w", c.ID, err)
			}
			cr.conds = append(cr.conds, k)
		}
		cc.rules = append(cc.rules, cr)
	}
	return cc, nil
}

func compileCond(cond Condition, currency string) (compiledCond, error) {
	k := compiledCond{op: cond.Operator, set: set(cond.Values), prefixes: cond.Values}
	if cond.Operator == OpRegex {
		if len(cond.Values) != 1 {
			return k, errors.New("a regex condition needs exactly one expression")
		}
		re, err := regexp.Compile(cond.Values[0])
		if err != nil {
			return k, fmt.Errorf("compiling %q: %w", cond.Values[0], err)
		}
		k.re = re
	}
	if cond.Dimension == CurrencyDimension {
		k.decided, k.answer = true, k.test(currency)
		return k, nil
	}
	r, err := ParseRef(cond.Dimension)
	if err != nil || r.IsCategory() {
		return k, fmt.Errorf("condition on %q: %w", cond.Dimension, ErrUnknownDimension)
	}
	k.ref = r
	return k, nil
}

func (k *compiledCond) test(v string) bool {
	switch k.op {
	case OpIn:
		_, ok := k.set[v]
		return ok
	case OpNotIn:
		_, ok := k.set[v]
		return !ok
	case OpPrefix:
		for _, p := range k.prefixes {
			if strings.HasPrefix(v, p) {
				return true
			}
		}
		return false
	case OpRegex:
		return k.re.MatchString(v)
	case OpExists:
		return v != ""
	}
	return false
}

// bucket returns the bucket a's spend falls in.
func (c *compiledCategory) bucket(a *Attrs) string {
	for i := range c.rules {
		r := &c.rules[i]
		hit := true
		for j := range r.conds {
			k := &r.conds[j]
			if k.decided {
				hit = k.answer
			} else {
				hit = k.test(a.Get(k.ref))
			}
			if !hit {
				break
			}
		}
		if hit {
			return r.bucket
		}
	}
	return c.def
}
