package explore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/pg"

	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/docs"
	"github.com/costplane/costplane/services/attribution/internal/sqlparam"
)

// Categories finds a tenant's categories.
type Categories interface {
	Get(ctx context.Context, tenant, id string) (*category.Category, error)
}

// Explorer runs queries.
type Explorer struct {
	pool *pgxpool.Pool
	cats Categories
}

// New returns an explorer reading pool.
func New(pool *pgxpool.Pool, cats Categories) *Explorer {
	return &Explorer{pool: pool, cats: cats}
}

// Query answers q for tenant. q is aligned to whole hours first.
func (e *Explorer) Query(ctx context.Context, tenant string, q Query) (*Result, error) {
	q.Align()
	if q.Metrics == 0 {
		q.Metrics = MetricEffective
	}
	if err := q.validate(); err != nil {
		return nil, err
	}
	p, err := e.plan(ctx, tenant, q)
	if err != nil {
		return nil, err
	}

	rows, err := e.run(ctx, p)
	if err != nil {
		return nil, err
	}
	rows = p.finish(rows)
	series := assemble(rows, len(q.GroupBy))
	series = topN(series, q.TopN)
	for i := range series {
		series[i].mask(q.Metrics)
	}
	return &Result{Start: q.Start, End: q.End, Series: series}, nil
}

func (e *Explorer) plan(ctx context.Context, tenant string, q Query) (*plan, error) {
	p := &plan{
		// Series are ordered by effective cost, so it is always read.
		q: q, params: sqlparam.New(tenant), fetch: q.Metrics | MetricEffective,
		cats: make(map[string]*category.Category),
	}
	refs := append([]Ref(nil), q.GroupBy...)
	for _, f := range q.Filters {
		refs = append(refs, f.Ref)
	}
	for _, r := range refs {
		if r.Dim != dims.Category || p.cats[r.CategoryID] != nil {
			continue
		}
		c, err := e.cats.Get(ctx, tenant, r.CategoryID)
		if errors.Is(err, docs.ErrNotFound) {
			return nil, &MissingCategoryError{ID: r.CategoryID}
		}
		if err != nil {
			return nil, err
		}
		p.cats[r.CategoryID] = c
	}

	for _, g := range q.GroupBy {
		col := column{ref: g}
		if g.Dim == dims.Category && len(p.cats[g.CategoryID].Splits) > 0 {
			col.cat = p.cats[g.CategoryID]
		}
		p.columns = append(p.columns, col)
	}
	p.addFilters()
	if err := e.pool.QueryRow(ctx, rolledSQL).Scan(&p.rolled); err != nil {
		return nil, fmt.Errorf("reading the rollup watermark: %w", err)
	}
	for _, c := range p.columns {
		if c.cat != nil {
			// Splits weigh by cost, tokens or requests.
			p.fetch |= MetricEffective | MetricList | MetricTokens | MetricRequests
		}
	}
	if q.usesKind() {
		p.fetch &= perKind
	}
	return p, nil
}

// rolledSQL reads the first day without daily rollups; the epoch stands
// for none rolled up. Hourly rollups hold every day, so a watermark that
// moves on before the query runs only makes it read more hours.
const rolledSQL = `
SELECT CASE WHEN rolled_until = '-infinity' THEN 'epoch' ELSE rolled_until END
FROM attribution.rollup_watermark`

// row is one aggregated row: a time bucket, a currency, the grouping
// columns' values and the metrics.
type row struct {
	bucket   time.Time
	currency string
	groups   []string
	v        Values
}

// noJITSQL turns JIT compilation off for a statement that reads hourly
// rollups: their many wide rows cost enough to trigger it, and compiling
// then takes longer than the short aggregation it would speed up (a
// ragged 30-day range over 10M events: 100 ms instead of 130-180 ms). A
// statement reading daily rollups only stays below the threshold and
// skips the transaction this needs.
const noJITSQL = `SET LOCAL jit = off`

func (e *Explorer) run(ctx context.Context, p *plan) ([]row, error) {
	if !p.readsHours() {
		return scanRows(ctx, e.pool, p)
	}
	var out []row
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, noJITSQL); err != nil {
			return fmt.Errorf("setting up the cost query: %w", err)
		}
		var err error
		out, err = scanRows(ctx, tx, p)
		return err
	})
	return out, err
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func scanRows(ctx context.Context, db querier, p *plan) ([]row, error) {
	rs, err := db.Query(ctx, p.sql(), p.params.Args()...)
	if err != nil {
		return nil, fmt.Errorf("querying costs: %w", err)
	}
	defer rs.Close()

	// One scratch row and its scan targets serve every row: building the
	// targets per row cost more than the query's own aggregation.
	var (
		out     []row
		scratch = row{groups: make([]string, len(p.columns))}
		dest    = p.dest(&scratch)
	)
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			return nil, fmt.Errorf("reading costs: %w", err)
		}
		r := scratch
		r.bucket = r.bucket.UTC()
		r.groups = slices.Clone(scratch.groups)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("reading costs: %w", err)
	}
	return out, nil
}

func (p *plan) dest(r *row) []any {
	dest := []any{&r.bucket, &r.currency}
	for i := range r.groups {
		dest = append(dest, &r.groups[i])
	}
	v := &r.v
	targets := map[Metric][]any{
		MetricEffective: {&v.Eff}, MetricList: {&v.List}, MetricRequests: {&v.Requests},
		MetricRuns: {&v.Runs}, MetricSessions: {&v.Sessions}, MetricEvents: {&v.Events},
		MetricUnpriced: {&v.Unpriced},
	}
	for i := range v.Tokens {
		targets[MetricTokens] = append(targets[MetricTokens], &v.Tokens[i])
	}
	for _, mc := range metricColumns {
		if p.fetch&mc.m != 0 {
			dest = append(dest, targets[mc.m]...)
		}
	}
	return dest
}

// finish applies the splits and the filters that follow them, and drops
// the hidden columns.
func (p *plan) finish(rows []row) []row {
	for i, c := range p.columns {
		if c.cat != nil {
			rows = split(rows, i, c.cat)
		}
	}
	for _, f := range p.post {
		rows = slices.DeleteFunc(rows, func(r row) bool {
			v := r.groups[f.col]
			return (f.include != nil && !f.include[v]) || f.exclude[v]
		})
	}
	visible := len(p.q.GroupBy)
	if len(p.columns) == visible {
		return rows
	}
	return regroup(rows, visible)
}

// regroup keeps the first n grouping columns and sums rows that then
// share their key.
func regroup(rows []row, n int) []row {
	idx := make(map[string]int)
	var out []row
	for _, r := range rows {
		r.groups = r.groups[:n]
		k := rowKey(r.bucket, r.currency, r.groups, -1)
		if i, ok := idx[k]; ok {
			out[i].v.add(&r.v)
			continue
		}
		idx[k] = len(out)
		out = append(out, r)
	}
	return out
}

// rowKey identifies a row, leaving out grouping column skip.
func rowKey(bucket time.Time, currency string, groups []string, skip int) string {
	var b strings.Builder
	b.WriteString(bucket.Format(time.RFC3339))
	b.WriteString("\x00" + currency)
	for i, g := range groups {
		if i != skip {
			b.WriteString("\x00" + g)
		}
	}
	return b.String()
}

// split spreads the shared buckets of the category in column col over
// the other buckets. Targets and weights come from each group's totals
// over the whole range (a group being a currency and a value of every
// other column), and every time bucket's shared cost is spread by them,
// so the split of each point adds up to its unsplit cost exactly.
func split(rows []row, col int, cat *category.Category) []row {
	groups := make(map[string][]int)
	var order []string
	for i, r := range rows {
		k := rowKey(time.Time{}, r.currency, r.groups, col)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		allocs := cat.Allocations(partsOf(rows, groups[k], col))
		if len(allocs) > 0 {
			rows = splitPoints(rows, groups[k], col, allocs)
		}
	}
	return rows
}

// partsOf sums the member rows per bucket of column col.
func partsOf(rows []row, members []int, col int) []category.Part {
	var parts []category.Part
	for _, i := range members {
		v := &rows[i].v
		j := slices.IndexFunc(parts, func(p category.Part) bool {
			return p.Bucket == rows[i].groups[col]
		})
		if j < 0 {
			parts = append(parts, category.Part{Bucket: rows[i].groups[col]})
			j = len(parts) - 1
		}
		parts[j].Eff += v.Eff
		parts[j].List += v.List
		parts[j].Tokens += v.tokens()
		parts[j].Requests += v.Requests
	}
	return parts
}

// splitPoints applies allocs within each time bucket of a group.
func splitPoints(rows []row, members []int, col int, allocs []category.Allocation) []row {
	byTime := make(map[time.Time][]int)
	var times []time.Time
	for _, i := range members {
		t := rows[i].bucket
		if _, ok := byTime[t]; !ok {
			times = append(times, t)
		}
		byTime[t] = append(byTime[t], i)
	}
	for _, t := range times {
		point := byTime[t]
		parts := partsOf(rows, point, col)
		parts = category.ApplyAllocations(parts, allocs)
		for _, part := range parts {
			i := slices.IndexFunc(point, func(i int) bool { return rows[i].groups[col] == part.Bucket })
			if i < 0 {
				r := row{bucket: t, currency: rows[point[0]].currency,
					groups: slices.Clone(rows[point[0]].groups)}
				r.groups[col] = part.Bucket
				rows = append(rows, r)
				point = append(point, len(rows)-1)
				i = len(point) - 1
			}
			rows[point[i]].v.Eff, rows[point[i]].v.List = part.Eff, part.List
		}
	}
	return rows
}

// assemble turns rows into series ordered by effective cost, highest
// first, then by currency and group values.
func assemble(rows []row, n int) []Series {
	idx := make(map[string]int)
	var out []Series
	for _, r := range rows {
		k := r.currency + "\x00" + strings.Join(r.groups[:n], "\x00")
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Series{Groups: r.groups[:n], Currency: r.currency})
		}
		out[i].Total.add(&r.v)
		out[i].Points = append(out[i].Points, Point{Start: r.bucket, Values: r.v})
	}
	for i := range out {
		slices.SortFunc(out[i].Points, func(a, b Point) int { return a.Start.Compare(b.Start) })
	}
	slices.SortFunc(out, func(a, b Series) int {
		return cmp.Or(cmp.Compare(b.Total.Eff, a.Total.Eff), cmp.Compare(a.Currency, b.Currency),
			slices.Compare(a.Groups, b.Groups))
	})
	return out
}

// topN keeps the first n series and sums the rest, per currency, into an
// "others" series at the end.
func topN(series []Series, n int) []Series {
	if n <= 0 || len(series) <= n {
		return series
	}
	kept := series[:n:n]
	others := make(map[string]*Series)
	var currencies []string
	for _, s := range series[n:] {
		o, ok := others[s.Currency]
		if !ok {
			o = &Series{Others: true, Currency: s.Currency}
			others[s.Currency] = o
			currencies = append(currencies, s.Currency)
		}
		o.Total.add(&s.Total)
		o.Points = mergePoints(o.Points, s.Points)
	}
	slices.Sort(currencies)
	for _, c := range currencies {
		kept = append(kept, *others[c])
	}
	return kept
}

func mergePoints(a, b []Point) []Point {
	out := make([]Point, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Start.Before(b[j].Start)):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Start.Before(a[i].Start):
			out = append(out, b[j])
			j++
		default:
			p := a[i]
			p.Values.add(&b[j].Values)
			out = append(out, p)
			i, j = i+1, j+1
		}
	}
	return out
}

// mask zeroes the metrics that were fetched but not asked for.
func (s *Series) mask(m Metric) {
	s.Total.mask(m)
	for i := range s.Points {
		s.Points[i].Values.mask(m)
	}
}

func (v *Values) mask(m Metric) {
	keep := *v
	*v = Values{}
	if m&MetricEffective != 0 {
		v.Eff = keep.Eff
	}
	if m&MetricList != 0 {
		v.List = keep.List
	}
	if m&MetricTokens != 0 {
		v.Tokens = keep.Tokens
	}
	if m&MetricRequests != 0 {
		v.Requests = keep.Requests
	}
	if m&MetricRuns != 0 {
		v.Runs = keep.Runs
	}
	if m&MetricSessions != 0 {
		v.Sessions = keep.Sessions
	}
	if m&MetricEvents != 0 {
		v.Events = keep.Events
	}
	if m&MetricUnpriced != 0 {
		v.Unpriced = keep.Unpriced
	}
}
