package explore

import (
	"fmt"
	"strings"
	"time"

	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/sqlparam"
)

// column is one grouping column of the SQL: a query's group-by, or a
// hidden one that a split category needs.
type column struct {
	ref    Ref
	hidden bool
	// cat is set for a category with shared-cost splits.
	cat *category.Category
}

// plan is a query turned into SQL and the Go steps that follow it.
type plan struct {
	q       Query
	params  *sqlparam.List
	columns []column
	// dimsWhere and kindWhere filter the dimension sets and the kinds.
	dimsWhere []string
	kindWhere []string
	// post filters apply to split categories, after the split.
	post []postFilter
	// fetch are the metrics read, a superset of the asked ones.
	fetch Metric
	cats  map[string]*category.Category
	// rolled is the first day without daily rollups (the zero time when
	// no day has them); the days from it on are read hourly.
	rolled time.Time
}

type postFilter struct {
	col              int
	include, exclude map[string]bool
}

// dimsExpr is the SQL of a dimension over attribution.dimsets.
func (p *plan) dimsExpr(r Ref) string {
	if c, ok := dims.Column(r.Dim); ok {
		return c
	}
	switch r.Dim {
	case dims.Label:
		return fmt.Sprintf("coalesce(labels->>%s::text, '')", p.params.Add(r.LabelKey))
	case dims.Category:
		return p.cats[r.CategoryID].SQL(func(cr category.Ref) string {
			return p.dimsExpr(Ref{Dim: cr.Dim, LabelKey: cr.LabelKey})
		}, p.params)
	}
	return "''"
}

func (p *plan) addFilters() {
	for _, f := range p.q.Filters {
		switch {
		case f.Ref.Dim == dims.TokenType:
			p.kindWhere = append(p.kindWhere, p.match("v.kind", kinds(f.Include),
				kinds(f.Exclude), "smallint[]")...)
		case f.Ref.Dim == dims.Category && len(p.cats[f.Ref.CategoryID].Splits) > 0:
			p.post = append(p.post, postFilter{
				col: p.hiddenColumn(f.Ref), include: set(f.Include), exclude: set(f.Exclude),
			})
		default:
			p.dimsWhere = append(p.dimsWhere, p.match(p.dimsExpr(f.Ref), f.Include, f.Exclude,
				"text[]")...)
		}
	}
}

func (p *plan) match(expr string, include, exclude any, typ string) []string {
	var out []string
	if n := lenOf(include); n > 0 {
		out = append(out, fmt.Sprintf("%s = ANY(%s::%s)", expr, p.params.Add(include), typ))
	}
	if n := lenOf(exclude); n > 0 {
		out = append(out, fmt.Sprintf("NOT (%s = ANY(%s::%s))", expr, p.params.Add(exclude),
			typ))
	}
	return out
}

func lenOf(v any) int {
	switch s := v.(type) {
	case []string:
		return len(s)
	case []int16:
		return len(s)
	}
	return 0
}

func kinds(names []string) []int16 {
	out := make([]int16, 0, len(names))
	for _, n := range names {
		if k, ok := dims.ParseKind(n); ok {
			out = append(out, int16(k))
		} else {
			out = append(out, -1) // matches nothing, as an unknown value does
		}
	}
	return out
}

func set(values []string) map[string]bool {
	if len(values) == 0 {
		return nil
	}
	out := make(map[string]bool, len(values))
	for _, v := range values {
		out[v] = true
	}
	return out
}

// hiddenColumn returns the column of a split category, adding a hidden
// one when the query does not group by it.
func (p *plan) hiddenColumn(r Ref) int {
	for i, c := range p.columns {
		if c.ref == r {
			return i
		}
	}
	p.columns = append(p.columns, column{ref: r, hidden: true, cat: p.cats[r.CategoryID]})
	return len(p.columns) - 1
}

// metricColumns are the rollup columns of each metric, in scan order.
var metricColumns = []struct {
	m    Metric
	cols []string
}{
	{MetricEffective, []string{"effective_nanos"}},
	{MetricList, []string{"list_nanos"}},
	{MetricTokens, dims.TokenColumns[:]},
	{MetricRequests, []string{"requests"}},
	{MetricRuns, []string{"runs"}},
	{MetricSessions, []string{"sessions"}},
	{MetricEvents, []string{"events"}},
	{MetricUnpriced, []string{"unpriced"}},
}

// sql builds the statement. Its columns are the bucket start, the
// currency, one per grouping column, then the fetched metrics.
func (p *plan) sql() string {
	var b strings.Builder
	b.WriteString("WITH d AS (SELECT dims_id, currency")
	for i, c := range p.columns {
		if c.ref.Dim != dims.TokenType {
			fmt.Fprintf(&b, ", %s AS g%d", p.dimsExpr(c.ref), i)
		}
	}
	b.WriteString(" FROM attribution.dimsets WHERE tenant_id = $1")
	for _, w := range p.dimsWhere {
		b.WriteString(" AND " + w)
	}
	b.WriteString(")\nSELECT r.b, d.currency")
	for i, c := range p.columns {
		if c.ref.Dim == dims.TokenType {
			fmt.Fprintf(&b, ", (%s::text[])[r.kind + 1]", p.params.Add(kindNames()))
		} else {
			fmt.Fprintf(&b, ", d.g%d", i)
		}
	}
	for _, mc := range metricColumns {
		if p.fetch&mc.m != 0 {
			for _, col := range mc.cols {
				fmt.Fprintf(&b, ", sum(r.%s)::bigint", col)
			}
		}
	}
	b.WriteString("\nFROM (" + p.segmentsSQL() + ") r JOIN d ON d.dims_id = r.dims_id\nGROUP BY ")
	for i := range len(p.columns) + 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d", i+1)
	}
	return b.String()
}

func kindNames() []string {
	out := make([]string, dims.NumKinds)
	for k := range out {
		out[k] = dims.KindName(k)
	}
	return out
}

// segment is a part of the range read from one rollup table.
type segment struct {
	daily    bool
	from, to time.Time
}

// segments cuts the range into whole days rolled up, read daily, and the
// hours around them. Hourly queries read hours only.
//
// TODO: hours older than the hourly rollup retention
// (ATTRIBUTION_HOURLY_RETENTION, 400 days by default) are gone, so a
// range starting or ending inside such a day misses that day's edge
// hours; the explorer should widen such edges to the whole day. Safe for
// now: whole-day ranges, which perspectives and the dashboard use, are
// exact.
func (p *plan) segments() []segment {
	start, end := p.q.Start, p.q.End
	if p.q.Granularity == Hour {
		return []segment{{false, start, end}}
	}
	firstDay := start.Truncate(24 * time.Hour)
	if !firstDay.Equal(start) {
		firstDay = firstDay.Add(24 * time.Hour)
	}
	lastDay := end.Truncate(24 * time.Hour)
	if lastDay.After(p.rolled) {
		lastDay = p.rolled
	}
	if !firstDay.Before(lastDay) {
		return []segment{{false, start, end}}
	}
	var out []segment
	if start.Before(firstDay) {
		out = append(out, segment{false, start, firstDay})
	}
	out = append(out, segment{true, firstDay, lastDay})
	if lastDay.Before(end) {
		out = append(out, segment{false, lastDay, end})
	}
	return out
}

// readsHours reports whether the query reads hourly rollups.
func (p *plan) readsHours() bool {
	for _, s := range p.segments() {
		if !s.daily {
			return true
		}
	}
	return false
}

func (p *plan) segmentsSQL() string {
	kind := p.q.usesKind()
	parts := make([]string, 0, 3)
	for _, s := range p.segments() {
		parts = append(parts, p.segmentSQL(s, kind))
	}
	return strings.Join(parts, "\nUNION ALL\n")
}

func (p *plan) segmentSQL(s segment, kind bool) string {
	table := "rollup_hour"
	switch {
	case s.daily && kind:
		table = "rollup_kind_day"
	case s.daily:
		table = "rollup_day"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s AS b, dims_id", p.bucketExpr(s.daily))
	if kind {
		b.WriteString(", v.kind")
	}
	for _, mc := range metricColumns {
		if p.fetch&mc.m == 0 {
			continue
		}
		for i, col := range mc.cols {
			b.WriteString(", " + kindColumn(kind, mc.m, i, col))
		}
	}
	fmt.Fprintf(&b, " FROM attribution.%s", table)
	if kind {
		b.WriteString(" CROSS JOIN LATERAL (VALUES " + kindValues() +
			") AS v(kind, effective_nanos, list_nanos, quantity)")
	}
	fmt.Fprintf(&b, " WHERE tenant_id = $1 AND bucket >= %s AND bucket < %s",
		p.params.Add(s.from), p.params.Add(s.to))
	if kind {
		b.WriteString(" AND (v.effective_nanos <> 0 OR v.list_nanos <> 0 OR v.quantity <> 0)")
	}
	for _, w := range p.kindWhere {
		b.WriteString(" AND " + w)
	}
	return b.String()
}

// kindValues unpivots a rollup row's per-kind columns into one row per
// kind: (kind, effective cost, list cost, quantity).
func kindValues() string {
	rows := make([]string, dims.NumKinds)
	for k := range dims.NumKinds {
		qty := "0::bigint"
		if k > 0 {
			qty = dims.QuantityColumns[k-1]
		}
		rows[k] = fmt.Sprintf("(%d::smallint, %s, %s, %s)", k, dims.EffectiveColumns[k],
			dims.ListColumns[k], qty)
	}
	return strings.Join(rows, ", ")
}

// kindColumn reads a metric column, or its per-kind value when the
// query splits by kind: then a token column is its kind's quantity.
func kindColumn(kind bool, m Metric, i int, col string) string {
	switch {
	case !kind:
		return col
	case m == MetricTokens:
		return fmt.Sprintf("CASE WHEN v.kind = %d THEN v.quantity ELSE 0 END AS %s", i+1, col)
	}
	return "v." + col
}

func (p *plan) bucketExpr(daily bool) string {
	switch p.q.Granularity {
	case Hour:
		return "bucket"
	case Day:
		if daily {
			return "bucket"
		}
		return "date_trunc('day', bucket, 'UTC')"
	case Week:
		return "date_trunc('week', bucket, 'UTC')"
	}
	return "date_trunc('month', bucket, 'UTC')"
}
