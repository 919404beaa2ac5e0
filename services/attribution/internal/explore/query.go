// Package explore answers Cost Explorer queries from the rollups: a time
// range at a granularity, filters that AND together, up to three group-by
// dimensions (label values and cost-category buckets included), metrics,
// and top-N with an "others" series. Raw lines are never read.
//
// Ranges are cut into whole UTC days rolled up, read from the daily
// rollups, and the hours at either edge and of the days not rolled up yet
// (today, usually), read from the hourly ones. Dimension filters
// and groupings are applied to the small dimension-set table first.
// Cost categories compile to SQL; their shared-cost splits are applied to
// the aggregated rows in Go, with exact integer allocation.
package explore

import (
	"errors"
	"fmt"
	"time"

	"github.com/costplane/costplane/services/attribution/internal/dims"
)

// Granularity is a time bucket's width.
type Granularity int

// The granularities; days, weeks and months are UTC, weeks from Monday.
const (
	Hour Granularity = iota + 1
	Day
	Week
	Month
)

// Ref names a dimension.
type Ref struct {
	Dim        dims.Dimension
	LabelKey   string
	CategoryID string
}

// Filter keeps rows whose value is in Include (unless it is empty) and
// not in Exclude.
type Filter struct {
	Ref     Ref
	Include []string
	Exclude []string
}

// Metric is a set of metrics.
type Metric uint

// The metrics.
const (
	MetricEffective Metric = 1 << iota
	MetricList
	MetricTokens
	MetricRequests
	MetricRuns
	MetricSessions
	MetricEvents
	MetricUnpriced
)

// perKind are the metrics the per-kind rollups hold.
const perKind = MetricEffective | MetricList | MetricTokens

// MaxGroupBy is how many dimensions a query may group by.
const MaxGroupBy = 3

// Query is one explorer question.
type Query struct {
	Start, End  time.Time
	Granularity Granularity
	Filters     []Filter
	GroupBy     []Ref
	Metrics     Metric
	TopN        int
}

// Values are the metrics of a row; money in nanos.
type Values struct {
	Eff, List                                  int64
	Tokens                                     [dims.NumTokenKinds]int64
	Requests, Runs, Sessions, Events, Unpriced int64
}

func (v *Values) add(o *Values) {
	v.Eff += o.Eff
	v.List += o.List
	for i := range v.Tokens {
		v.Tokens[i] += o.Tokens[i]
	}
	v.Requests += o.Requests
	v.Runs += o.Runs
	v.Sessions += o.Sessions
	v.Events += o.Events
	v.Unpriced += o.Unpriced
}

func (v *Values) tokens() int64 {
	var s int64
	for _, t := range v.Tokens {
		s += t
	}
	return s
}

// Point is a series' values in one time bucket.
type Point struct {
	Start time.Time
	Values
}

// Series is one group's values over time.
type Series struct {
	Groups   []string
	Others   bool
	Currency string
	Total    Values
	Points   []Point
}

// Result is a query's answer.
type Result struct {
	Start, End time.Time
	Series     []Series
}

// InvalidError names the part of a query that cannot be answered.
type InvalidError struct {
	Field, Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrCategoryNotFound matches the error of a query naming a category the
// tenant does not have; errors.As finds the *MissingCategoryError.
var ErrCategoryNotFound = errors.New("cost category not found")

// MissingCategoryError names the missing category.
type MissingCategoryError struct {
	ID string
}

func (e *MissingCategoryError) Error() string { return "cost category " + e.ID + " not found" }

// Is makes the error match ErrCategoryNotFound.
func (e *MissingCategoryError) Is(target error) bool { return target == ErrCategoryNotFound }

// validate checks what can be checked without the store.
func (q *Query) validate() error {
	switch {
	case q.Start.IsZero() || q.End.IsZero():
		return invalid("query.time_range", "is required")
	case !q.End.After(q.Start):
		return invalid("query.time_range.end_time", "must be after start_time")
	case q.End.Sub(q.Start) > 3*366*24*time.Hour:
		return invalid("query.time_range", "must span at most three years")
	case q.Granularity < Hour || q.Granularity > Month:
		return invalid("query.granularity", "is required")
	case q.Granularity == Hour && q.End.Sub(q.Start) > 31*24*time.Hour:
		return invalid("query.granularity", "hourly queries must span at most 31 days")
	case len(q.GroupBy) > MaxGroupBy:
		return invalid("query.group_by", "must have at most %d dimensions", MaxGroupBy)
	case q.TopN < 0:
		return invalid("query.top_n", "must not be negative")
	}
	for i, g := range q.GroupBy {
		if err := g.validate(fmt.Sprintf("query.group_by[%d]", i)); err != nil {
			return err
		}
	}
	for i, f := range q.Filters {
		if err := f.Ref.validate(fmt.Sprintf("query.filters[%d].dimension", i)); err != nil {
			return err
		}
	}
	if q.usesKind() && q.Metrics&^perKind != 0 {
		return invalid("query.metrics",
			"only cost and tokens can be split by token type")
	}
	return nil
}

func (r Ref) validate(field string) error {
	_, plain := dims.Column(r.Dim)
	switch {
	case plain, r.Dim == dims.TokenType:
	case r.Dim == dims.Label && r.LabelKey == "":
		return invalid(field+".label_key", "is required for a label")
	case r.Dim == dims.Category && r.CategoryID == "":
		return invalid(field+".category_id", "is required for a category")
	case r.Dim != dims.Label && r.Dim != dims.Category:
		return invalid(field+".dimension", "is required")
	}
	return nil
}

func (q *Query) usesKind() bool {
	for _, g := range q.GroupBy {
		if g.Dim == dims.TokenType {
			return true
		}
	}
	for _, f := range q.Filters {
		if f.Ref.Dim == dims.TokenType {
			return true
		}
	}
	return false
}

// Align widens the range to whole hours, the rollups' resolution.
func (q *Query) Align() {
	q.Start = q.Start.UTC().Truncate(time.Hour)
	end := q.End.UTC()
	if t := end.Truncate(time.Hour); !t.Equal(end) {
		end = t.Add(time.Hour)
	}
	q.End = end
}
