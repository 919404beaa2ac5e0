package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// perTenant collects the keys of a lookup per tenant, so that each tenant's
// keys go to PostgreSQL as arrays compared with = ANY, which the primary
// keys serve directly, all tenants in one round trip. Lookups of raw
// lines group by tenant and day, so that each query reads one partition.
type perTenant struct {
	groups []string
	lead   map[string][]any
	args   map[string][]any
}

func newPerTenant() *perTenant {
	return &perTenant{lead: make(map[string][]any), args: make(map[string][]any)}
}

// add appends one key, made of strings and times, to tenant's arrays.
func (p *perTenant) add(tenant string, vals ...any) {
	p.addIn(tenant, []any{tenant}, vals...)
}

// addDay appends one key to the arrays of tenant and day.
func (p *perTenant) addDay(tenant string, day time.Time, vals ...any) {
	p.addIn(tenant+"\x00"+day.Format(time.DateOnly), []any{tenant, day}, vals...)
}

func (p *perTenant) addIn(group string, lead []any, vals ...any) {
	a, ok := p.args[group]
	if !ok {
		p.lead[group] = lead
		a = make([]any, len(vals))
		for i, v := range vals {
			switch v.(type) {
			case time.Time:
				a[i] = []time.Time(nil)
			default:
				a[i] = []string(nil)
			}
		}
		p.groups = append(p.groups, group)
	}
	for i, v := range vals {
		switch x := v.(type) {
		case time.Time:
			a[i] = append(a[i].([]time.Time), x)
		case string:
			a[i] = append(a[i].([]string), x)
		}
	}
	p.args[group] = a
}

func (p *perTenant) empty() bool { return len(p.groups) == 0 }

// query runs sql ($1 the tenant, $2 the day for addDay, then the arrays)
// for every group and scans each row into dest before calling each.
func (p *perTenant) query(ctx context.Context, tx pgx.Tx, what, sql string, dest []any,
	each func() error,
) error {
	if p.empty() {
		return nil
	}
	var q pgx.Batch
	for _, g := range p.groups {
		q.Queue(sql, append(append([]any(nil), p.lead[g]...), p.args[g]...)...)
	}
	br := tx.SendBatch(ctx, &q)
	for range p.groups {
		rows, err := br.Query()
		if err == nil {
			_, err = pgx.ForEachRow(rows, dest, each)
		}
		if err != nil {
			_ = br.Close() // the query's error says more
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
