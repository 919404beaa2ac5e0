// Package category holds Cost Categories: named sets of buckets that
// ordered rules sort cost into, first match wins, with a default bucket
// for cost no rule matches, and shared buckets whose cost is split over
// the others. A category compiles to a SQL expression over a dimension
// set, so it is evaluated at query time and an edit re-slices history.
package category

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/sqlparam"
)

// Operator compares a dimension's value with a condition's values.
type Operator int

// The operators.
const (
	OpUnspecified Operator = iota
	OpIn
	OpNotIn
	OpPrefix
	OpRegex
	OpExists
)

// Method says how a shared bucket's cost is spread.
type Method int

// The split methods.
const (
	MethodUnspecified Method = iota
	MethodEven
	MethodCost
	MethodTokens
	MethodRequests
	MethodFixed
)

// DefaultBucket is the bucket of unmatched cost when a category names none.
const DefaultBucket = "Unattributed"

// Ref names a dimension a condition tests.
type Ref struct {
	Dim      dims.Dimension
	LabelKey string
}

// Condition tests one dimension.
type Condition struct {
	Ref    Ref
	Op     Operator
	Values []string
}

// Rule puts cost matching all its conditions in Bucket.
type Rule struct {
	Bucket     string
	Conditions []Condition
}

// Share is a fixed share of a split, in basis points.
type Share struct {
	Bucket      string
	BasisPoints int32
}

// Split spreads the cost of a shared bucket.
type Split struct {
	Bucket  string
	Method  Method
	Targets []string
	Shares  []Share
}

// Category is a named set of rules.
type Category struct {
	ID         string
	Name       string
	Rules      []Rule
	Default    string
	Splits     []Split
	Revision   int64
	CreateTime time.Time
	UpdateTime time.Time
}

// Violation is one problem of a category definition, on a field path in
// the API's names.
type Violation struct {
	Field, Description string
}

var idPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidID reports whether id can name a category or a perspective.
func ValidID(id string) bool {
	return idPattern.MatchString(id)
}

// DefaultOrSet returns the default bucket, applying DefaultBucket.
func (c *Category) DefaultOrSet() string {
	if c.Default == "" {
		return DefaultBucket
	}
	return c.Default
}

// Validate returns every problem of the definition. Regular expressions
// are checked by the store, which asks PostgreSQL.
func (c *Category) Validate() []Violation {
	var vs []Violation
	add := func(field, format string, args ...any) {
		vs = append(vs, Violation{field, fmt.Sprintf(format, args...)})
	}
	if !ValidID(c.ID) {
		add("category.category_id", "must be 1-63 lower-case letters, digits and dashes")
	}
	if len(c.Rules) > 500 {
		add("category.rules", "must have at most 500 rules")
	}
	for i, r := range c.Rules {
		field := fmt.Sprintf("category.rules[%d]", i)
		if strings.TrimSpace(r.Bucket) == "" || len(r.Bucket) > 200 {
			add(field+".bucket", "must be 1-200 characters")
		}
		if len(r.Conditions) == 0 {
			add(field+".conditions", "must not be empty")
		}
		for j, cond := range r.Conditions {
			vs = append(vs, cond.validate(fmt.Sprintf("%s.conditions[%d]", field, j))...)
		}
	}
	return append(vs, c.validateSplits()...)
}

func (cond *Condition) validate(field string) []Violation {
	var vs []Violation
	add := func(f, d string) { vs = append(vs, Violation{field + f, d}) }
	switch _, plain := dims.Column(cond.Ref.Dim); {
	case cond.Ref.Dim == dims.Label && cond.Ref.LabelKey == "":
		add(".dimension.label_key", "is required for a label")
	case cond.Ref.Dim != dims.Label && !plain:
		add(".dimension.dimension", "cannot be tested by a rule")
	}
	switch cond.Op {
	case OpIn, OpNotIn, OpPrefix:
		if len(cond.Values) == 0 {
			add(".values", "must not be empty")
		}
	case OpRegex:
		if len(cond.Values) != 1 {
			add(".values", "must hold exactly one regular expression")
		}
	case OpExists:
		if len(cond.Values) != 0 {
			add(".values", "must be empty for exists")
		}
	default:
		add(".operator", "is required")
	}
	return vs
}

func (c *Category) validateSplits() []Violation {
	var vs []Violation
	add := func(field, format string, args ...any) {
		vs = append(vs, Violation{field, fmt.Sprintf(format, args...)})
	}
	shared := c.SharedBuckets()
	seen := make(map[string]bool)
	for i, s := range c.Splits {
		field := fmt.Sprintf("category.splits[%d]", i)
		if s.Bucket == "" {
			add(field+".bucket", "is required")
		}
		if seen[s.Bucket] {
			add(field+".bucket", "is split twice")
		}
		seen[s.Bucket] = true
		for j, t := range s.Targets {
			if shared[t] {
				add(fmt.Sprintf("%s.target_buckets[%d]", field, j), "is itself shared")
			}
		}
		switch s.Method {
		case MethodEven, MethodCost, MethodTokens, MethodRequests:
		case MethodFixed:
			vs = append(vs, s.validateShares(field, shared)...)
		default:
			add(field+".method", "is required")
		}
	}
	return vs
}

func (s *Split) validateShares(field string, shared map[string]bool) []Violation {
	var vs []Violation
	var total int64
	for j, sh := range s.Shares {
		if sh.BasisPoints < 0 {
			vs = append(vs, Violation{fmt.Sprintf("%s.shares[%d].basis_points", field, j),
				"must not be negative"})
		}
		if shared[sh.Bucket] || sh.Bucket == "" {
			vs = append(vs, Violation{fmt.Sprintf("%s.shares[%d].bucket", field, j),
				"must name a bucket that is not shared"})
		}
		total += int64(sh.BasisPoints)
	}
	if total != 10000 {
		vs = append(vs, Violation{field + ".shares", "basis points must add up to 10000"})
	}
	return vs
}

// SharedBuckets returns the buckets whose cost is split.
func (c *Category) SharedBuckets() map[string]bool {
	out := make(map[string]bool, len(c.Splits))
	for _, s := range c.Splits {
		out[s.Bucket] = true
	}
	return out
}

// Regexes returns the regular expressions of the rules with their field.
func (c *Category) Regexes() []Violation {
	var out []Violation
	for i, r := range c.Rules {
		for j, cond := range r.Conditions {
			if cond.Op == OpRegex && len(cond.Values) == 1 {
				out = append(out, Violation{
					fmt.Sprintf("category.rules[%d].conditions[%d].values[0]", i, j),
					cond.Values[0],
				})
			}
		}
	}
	return out
}

// Column returns the SQL expression of a dimension for a row source; a
// missing label must read as the empty string.
type Column func(Ref) string

// SQL compiles the category into a CASE expression yielding the bucket
// name, with every value passed through params.
func (c *Category) SQL(col Column, params *sqlparam.List) string {
	var b strings.Builder
	b.WriteString("(CASE")
	for _, r := range c.Rules {
		conds := make([]string, 0, len(r.Conditions))
		for _, cond := range r.Conditions {
			conds = append(conds, cond.sql(col, params))
		}
		fmt.Fprintf(&b, " WHEN %s THEN %s::text", strings.Join(conds, " AND "),
			params.Add(r.Bucket))
	}
	fmt.Fprintf(&b, " ELSE %s::text END)", params.Add(c.DefaultOrSet()))
	return b.String()
}

func (cond *Condition) sql(col Column, params *sqlparam.List) string {
	expr := col(cond.Ref)
	switch cond.Op {
	case OpIn:
		return fmt.Sprintf("%s = ANY(%s::text[])", expr, params.Add(cond.Values))
	case OpNotIn:
		return fmt.Sprintf("NOT (%s = ANY(%s::text[]))", expr, params.Add(cond.Values))
	case OpPrefix:
		return fmt.Sprintf("%s ^@ ANY(%s::text[])", expr, params.Add(cond.Values))
	case OpRegex:
		return fmt.Sprintf("%s ~ %s::text", expr, params.Add(cond.Values[0]))
	case OpExists:
		return fmt.Sprintf("%s <> ''", expr)
	}
	return "false"
}
