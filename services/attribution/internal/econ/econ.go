// Package econ computes unit economics per app, agent or cost-category
// bucket: cost per inference, the distribution of cost per run and per
// session, cost per outcome type and ROI, for a period and the one before
// it. Money stays in integer nanos; means round half away from zero and
// percentiles are nearest-rank values of the runs or sessions themselves.
package econ

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/libs/money"
	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/explore"
	"github.com/costplane/costplane/services/attribution/internal/sqlparam"
)

// Grouping is what economics are computed per.
type Grouping int

// The groupings.
const (
	ByApp Grouping = iota + 1
	ByAgent
	ByCategory
)

// Distribution describes a set of costs.
type Distribution struct {
	Mean, P50, P95, P99, Max int64
}

// Outcome is the economics of one outcome type.
type Outcome struct {
	Type           string
	Count          int64
	CostPerOutcome int64
	Value          int64
}

// Period holds a group's economics over one period.
type Period struct {
	Eff, Requests, CostPerInference int64
	Runs                            int64
	PerRun                          Distribution
	Sessions                        int64
	PerSession                      Distribution
	Outcomes                        []Outcome
	OutcomeValue                    int64
	// ROI is in basis points; ROIDefined is false without cost or value.
	ROI        int64
	ROIDefined bool
}

// Change is the relative change from the previous period, in basis
// points; nil when the previous value is zero.
type Change struct {
	Eff, CostPerInference, PerRunMean, PerSessionMean *int64
}

// Group is one group's economics.
type Group struct {
	Value, Currency   string
	Current, Previous Period
	Change            Change
}

// Request asks for unit economics.
type Request struct {
	Start, End time.Time
	By         Grouping
	Category   *category.Category
	// Values, when not empty, keeps only these groups.
	Values []string
}

// Calculator computes unit economics.
type Calculator struct {
	pool *pgxpool.Pool
	ex   *explore.Explorer
}

// New returns a calculator.
func New(pool *pgxpool.Pool, ex *explore.Explorer) *Calculator {
	return &Calculator{pool: pool, ex: ex}
}

type groupKey struct{ value, currency string }

// Compute returns every group's economics, highest current cost first.
func (c *Calculator) Compute(ctx context.Context, tenant string, req Request) ([]Group, error) {
	prevStart := req.Start.Add(-req.End.Sub(req.Start))
	cur, err := c.period(ctx, tenant, req, req.Start, req.End)
	if err != nil {
		return nil, err
	}
	prev, err := c.period(ctx, tenant, req, prevStart, req.Start)
	if err != nil {
		return nil, err
	}

	var out []Group
	for k, p := range cur {
		if len(req.Values) > 0 && !slices.Contains(req.Values, k.value) {
			continue
		}
		g := Group{Value: k.value, Currency: k.currency, Current: *p}
		if q, ok := prev[k]; ok {
			g.Previous = *q
		}
		g.Change = change(&g.Current, &g.Previous)
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Current.Eff, a.Current.Eff), cmp.Compare(a.Value, b.Value),
			cmp.Compare(a.Currency, b.Currency))
	})
	return out, nil
}

// period computes every group's economics over [start, end).
func (c *Calculator) period(ctx context.Context, tenant string, req Request,
	start, end time.Time,
) (periods, error) {
	out, err := c.costs(ctx, tenant, req, start, end)
	if err != nil {
		return nil, err
	}
	steps := []func(context.Context, string, Request, time.Time, time.Time, periods) error{
		c.runs, c.sessions, c.outcomes,
	}
	for _, step := range steps {
		if err := step(ctx, tenant, req, start, end, out); err != nil {
			return nil, err
		}
	}
	for _, p := range out {
		p.finish()
	}
	return out, nil
}

// periods holds a period's economics per group and currency.
type periods map[groupKey]*Period

func (ps periods) get(k groupKey) *Period {
	if ps[k] == nil {
		ps[k] = &Period{}
	}
	return ps[k]
}

// ofGroup returns the currencies a group has economics in.
func (ps periods) ofGroup(g string) []string {
	var out []string
	for k := range ps {
		if k.value == g {
			out = append(out, k.currency)
		}
	}
	slices.Sort(out)
	return out
}

// costs reads cost and requests per group from the rollups; a category's
// shared-cost splits apply.
func (c *Calculator) costs(ctx context.Context, tenant string, req Request,
	start, end time.Time,
) (periods, error) {
	ref := explore.Ref{Dim: dims.App}
	switch req.By {
	case ByAgent:
		ref.Dim = dims.Agent
	case ByCategory:
		ref = explore.Ref{Dim: dims.Category, CategoryID: req.Category.ID}
	}
	res, err := c.ex.Query(ctx, tenant, explore.Query{
		Start: start, End: end, Granularity: explore.Month, GroupBy: []explore.Ref{ref},
		Metrics: explore.MetricEffective | explore.MetricRequests,
	})
	if err != nil {
		return nil, err
	}
	out := make(periods, len(res.Series))
	for _, s := range res.Series {
		out[groupKey{s.Groups[0], s.Currency}] = &Period{
			Eff: s.Total.Eff, Requests: s.Total.Requests,
		}
	}
	return out, nil
}

// columns maps dimensions for rows of alias a (r for runs, s for
// sessions) joined with their first line's dimension set d: the agent is
// the row's own, the rest the first line's.
func columns(a string, p *sqlparam.List) category.Column {
	return func(ref category.Ref) string {
		switch ref.Dim {
		case dims.Agent:
			return a + ".agent"
		case dims.Label:
			return fmt.Sprintf("coalesce(d.labels->>%s::text, '')", p.Add(ref.LabelKey))
		}
		c, _ := dims.Column(ref.Dim)
		return "coalesce(d." + c + ", '')"
	}
}

// groupExpr is the SQL of the grouping for rows of alias a.
func groupExpr(req Request, a string, p *sqlparam.List) string {
	switch req.By {
	case ByApp:
		return a + ".app"
	case ByAgent:
		return a + ".agent"
	}
	return req.Category.SQL(columns(a, p), p)
}

// distributionSQL summarises the costs of the runs or sessions (%[2]s,
// aliased %[3]s) that started in the period, per group and currency.
// percentile_disc picks the nearest-rank value.
const distributionSQL = `
SELECT %[1]s AS g, %[3]s.currency, count(*), sum(%[3]s.effective_nanos)::bigint,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY %[3]s.effective_nanos),
       percentile_disc(0.95) WITHIN GROUP (ORDER BY %[3]s.effective_nanos),
       percentile_disc(0.99) WITHIN GROUP (ORDER BY %[3]s.effective_nanos),
       max(%[3]s.effective_nanos)
FROM attribution.%[2]s %[3]s
LEFT JOIN attribution.dimsets d ON d.tenant_id = %[3]s.tenant_id AND d.dims_id = %[3]s.dims_id
WHERE %[3]s.tenant_id = $1 AND %[3]s.start_time >= $2 AND %[3]s.start_time < $3
GROUP BY 1, 2`

func (c *Calculator) distribution(ctx context.Context, tenant string, req Request,
	table, alias string, start, end time.Time, put func(groupKey, int64, Distribution),
) error {
	p := sqlparam.New(tenant, start, end)
	sql := fmt.Sprintf(distributionSQL, groupExpr(req, alias, p), table, alias)
	rows, err := c.pool.Query(ctx, sql, p.Args()...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", table, err)
	}
	var (
		k        groupKey
		n, total int64
		d        Distribution
	)
	_, err = pgx.ForEachRow(rows, []any{&k.value, &k.currency, &n, &total, &d.P50, &d.P95,
		&d.P99, &d.Max}, func() error {
		d.Mean, _ = money.MulDiv(total, 1, n)
		put(k, n, d)
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading %s: %w", table, err)
	}
	return nil
}

func (c *Calculator) runs(ctx context.Context, tenant string, req Request, start, end time.Time,
	out periods,
) error {
	return c.distribution(ctx, tenant, req, "runs", "r", start, end,
		func(k groupKey, n int64, d Distribution) {
			p := out.get(k)
			p.Runs, p.PerRun = n, d
		})
}

func (c *Calculator) sessions(ctx context.Context, tenant string, req Request,
	start, end time.Time, out periods,
) error {
	return c.distribution(ctx, tenant, req, "sessions", "s", start, end,
		func(k groupKey, n int64, d Distribution) {
			p := out.get(k)
			p.Sessions, p.PerSession = n, d
		})
}

// outcomesSQL counts the outcomes of the period per group, type and
// value currency. An outcome belongs to the app and agent it names, else
// to those of its run, else of its session.
const outcomesSQL = `
SELECT %s AS g, o.type, o.currency, count(*), coalesce(sum(o.value_nanos), 0)::bigint
FROM attribution.outcomes o
LEFT JOIN attribution.runs r ON r.tenant_id = o.tenant_id AND r.run_id = o.run_id
LEFT JOIN attribution.sessions s ON s.tenant_id = o.tenant_id AND s.session_id = o.session_id
LEFT JOIN attribution.dimsets d
  ON d.tenant_id = o.tenant_id AND d.dims_id = coalesce(r.dims_id, s.dims_id)
WHERE o.tenant_id = $1 AND o.time >= $2 AND o.time < $3
GROUP BY 1, 2, 3`

const (
	outcomeApp   = "coalesce(nullif(o.app, ''), r.app, s.app, '')"
	outcomeAgent = "coalesce(nullif(o.agent_id, ''), r.agent, s.agent, '')"
)

func outcomeExpr(req Request, p *sqlparam.List) string {
	switch req.By {
	case ByApp:
		return outcomeApp
	case ByAgent:
		return outcomeAgent
	}
	return req.Category.SQL(func(ref category.Ref) string {
		switch ref.Dim {
		case dims.Agent:
			return outcomeAgent
		case dims.App:
			return "coalesce(nullif(o.app, ''), d.app, '')"
		case dims.Customer:
			return "coalesce(nullif(o.customer_id, ''), d.customer, '')"
		case dims.Label:
			k := p.Add(ref.LabelKey)
			return fmt.Sprintf("coalesce(o.labels->>%[1]s::text, d.labels->>%[1]s::text, '')", k)
		}
		c, _ := dims.Column(ref.Dim)
		return "coalesce(d." + c + ", '')"
	}, p)
}

func (c *Calculator) outcomes(ctx context.Context, tenant string, req Request,
	start, end time.Time, out periods,
) error {
	p := sqlparam.New(tenant, start, end)
	rows, err := c.pool.Query(ctx, fmt.Sprintf(outcomesSQL, outcomeExpr(req, p)), p.Args()...)
	if err != nil {
		return fmt.Errorf("reading outcomes: %w", err)
	}
	type row struct {
		group, typ, currency string
		n, value             int64
	}
	var (
		r   row
		all []row
	)
	_, err = pgx.ForEachRow(rows, []any{&r.group, &r.typ, &r.currency, &r.n, &r.value},
		func() error { all = append(all, r); return nil })
	if err != nil {
		return fmt.Errorf("reading outcomes: %w", err)
	}
	for _, r := range all {
		out.addOutcome(r.group, r.typ, r.currency, r.n, r.value)
	}
	return nil
}

// addOutcome counts outcomes of a type in their group: with a value, in
// the value's currency; without one, in each currency the group has.
func (ps periods) addOutcome(group, typ, currency string, n, value int64) {
	targets := []string{currency}
	if have := ps.ofGroup(group); currency == "" && len(have) > 0 {
		targets = have
	}
	for _, cur := range targets {
		p := ps.get(groupKey{group, cur})
		i := slices.IndexFunc(p.Outcomes, func(o Outcome) bool { return o.Type == typ })
		if i < 0 {
			p.Outcomes = append(p.Outcomes, Outcome{Type: typ})
			i = len(p.Outcomes) - 1
		}
		p.Outcomes[i].Count += n
		if cur == currency {
			p.Outcomes[i].Value += value
		}
	}
}

// finish derives the ratios once the sums are in.
func (p *Period) finish() {
	if p.Requests > 0 {
		p.CostPerInference, _ = money.MulDiv(p.Eff, 1, p.Requests)
	}
	slices.SortFunc(p.Outcomes, func(a, b Outcome) int { return cmp.Compare(a.Type, b.Type) })
	for i := range p.Outcomes {
		o := &p.Outcomes[i]
		o.CostPerOutcome, _ = money.MulDiv(p.Eff, 1, o.Count)
		p.OutcomeValue += o.Value
	}
	if p.Eff > 0 && p.OutcomeValue != 0 {
		roi, err := money.MulDiv(p.OutcomeValue-p.Eff, 10000, p.Eff)
		p.ROI, p.ROIDefined = roi, err == nil
	}
}

func change(cur, prev *Period) Change {
	rel := func(now, before int64) *int64 {
		if before == 0 {
			return nil
		}
		v, err := money.MulDiv(now-before, 10000, before)
		if err != nil {
			return nil
		}
		return &v
	}
	return Change{
		Eff:              rel(cur.Eff, prev.Eff),
		CostPerInference: rel(cur.CostPerInference, prev.CostPerInference),
		PerRunMean:       rel(cur.PerRun.Mean, prev.PerRun.Mean),
		PerSessionMean:   rel(cur.PerSession.Mean, prev.PerSession.Mean),
	}
}
