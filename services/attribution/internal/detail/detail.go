// Package detail reads runs and sessions: a run's step-level cost
// waterfall, a session's turns, and lists of runs and sessions by start or
// by cost.
package detail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/costplane/costplane/services/attribution/internal/category"
	"github.com/costplane/costplane/services/attribution/internal/dims"
	"github.com/costplane/costplane/services/attribution/internal/sqlparam"
)

// ErrNotFound means the run or session does not exist for the tenant.
var ErrNotFound = errors.New("not found")

// Run is one run's summary.
type Run struct {
	ID, TraceID, Agent, AgentName, AgentVersion string
	Session, App, Customer, Environment         string
	Start, End                                  time.Time
	Currency                                    string
	Eff, List                                   int64
	Steps, Requests, Errors, Tokens, Unpriced   int64
}

// Step is one line of a run's waterfall.
type Step struct {
	ID, Parent             string
	Kind                   int16
	Agent, Provider, Model string
	Tool, Operation        string
	Status                 int16
	Start, End             time.Time
	Tokens                 [dims.NumTokenKinds]int64
	Eff, List, Cumulative  int64
	Requests, Unpriced     int64
}

// Session is one session's summary.
type Session struct {
	ID, Agent, App, Customer, Environment string
	Start, End                            time.Time
	Currency                              string
	Runs, Eff, List, Requests, Unpriced   int64
}

// Turn is one run of a session.
type Turn struct {
	N          int64
	Run        Run
	Cumulative int64
}

// Reader reads runs and sessions.
type Reader struct {
	pool *pgxpool.Pool
}

// New returns a reader on pool.
func New(pool *pgxpool.Pool) *Reader {
	return &Reader{pool: pool}
}

const runColumns = `r.run_id, r.trace_id, r.agent, r.agent_name, r.agent_version,
       r.session_id, r.app, r.customer_id, r.environment, r.start_time, r.end_time,
       r.currency, r.effective_nanos, r.list_nanos, r.steps, r.requests, r.errors, r.tokens,
       r.unpriced`

const getRunSQL = `SELECT ` + runColumns + `
FROM attribution.runs r WHERE r.tenant_id = $1 AND r.run_id = $2`

func runDest(r *Run) []any {
	return []any{&r.ID, &r.TraceID, &r.Agent, &r.AgentName, &r.AgentVersion, &r.Session,
		&r.App, &r.Customer, &r.Environment, &r.Start, &r.End, &r.Currency, &r.Eff, &r.List,
		&r.Steps, &r.Requests, &r.Errors, &r.Tokens, &r.Unpriced}
}

// Run returns one run.
func (rd *Reader) Run(ctx context.Context, tenant, id string) (*Run, error) {
	var r Run
	err := rd.pool.QueryRow(ctx, getRunSQL, tenant, id).Scan(runDest(&r)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("reading run: %w", err)
	}
	return &r, nil
}

// stepsSQL orders a run's steps by start and sums their cost cumulatively
// over the whole run before the page is cut.
const stepsSQL = `
SELECT step_id, parent_step_id, step_kind, agent_id, agent_name, provider, model, tool_name,
       operation, status, start_time, end_time, kind_quantity, effective_nanos, list_nanos,
       sum(effective_nanos) OVER (ORDER BY start_time, step_id)::bigint, requests, unpriced
FROM attribution.steps WHERE tenant_id = $1 AND run_id = $2
ORDER BY start_time, step_id OFFSET $3 LIMIT $4`

// Steps returns up to limit steps of a run from offset, in start order.
func (rd *Reader) Steps(ctx context.Context, tenant, run string, offset, limit int) (
	[]Step, error,
) {
	rows, err := rd.pool.Query(ctx, stepsSQL, tenant, run, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("reading steps: %w", err)
	}
	var (
		out        []Step
		s          Step
		id, name   string
		quantities []int64
	)
	dest := []any{&s.ID, &s.Parent, &s.Kind, &id, &name, &s.Provider, &s.Model, &s.Tool,
		&s.Operation, &s.Status, &s.Start, &s.End, &quantities, &s.Eff, &s.List, &s.Cumulative,
		&s.Requests, &s.Unpriced}
	_, err = pgx.ForEachRow(rows, dest, func() error {
		st := s
		st.Agent = dims.AgentKey(id, name)
		for i := range st.Tokens {
			if i+1 < len(quantities) {
				st.Tokens[i] = quantities[i+1]
			}
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading steps: %w", err)
	}
	return out, nil
}

const sessionColumns = `s.session_id, s.agent, s.app, s.customer_id, s.environment,
       s.start_time, s.end_time, s.currency, s.runs, s.effective_nanos, s.list_nanos,
       s.requests, s.unpriced`

const getSessionSQL = `SELECT ` + sessionColumns + `
FROM attribution.sessions s WHERE s.tenant_id = $1 AND s.session_id = $2`

func sessionDest(s *Session) []any {
	return []any{&s.ID, &s.Agent, &s.App, &s.Customer, &s.Environment, &s.Start, &s.End,
		&s.Currency, &s.Runs, &s.Eff, &s.List, &s.Requests, &s.Unpriced}
}

// Session returns one session.
func (rd *Reader) Session(ctx context.Context, tenant, id string) (*Session, error) {
	var s Session
	err := rd.pool.QueryRow(ctx, getSessionSQL, tenant, id).Scan(sessionDest(&s)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("reading session: %w", err)
	}
	return &s, nil
}

const turnsSQL = `
SELECT row_number() OVER w, ` + runColumns + `, sum(r.effective_nanos) OVER w::bigint
FROM attribution.runs r WHERE r.tenant_id = $1 AND r.session_id = $2
WINDOW w AS (ORDER BY r.start_time, r.run_id)
ORDER BY r.start_time, r.run_id OFFSET $3 LIMIT $4`

// Turns returns up to limit runs of a session from offset, in start order.
func (rd *Reader) Turns(ctx context.Context, tenant, session string, offset, limit int) (
	[]Turn, error,
) {
	rows, err := rd.pool.Query(ctx, turnsSQL, tenant, session, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("reading turns: %w", err)
	}
	var (
		out []Turn
		t   Turn
	)
	dest := append([]any{&t.N}, append(runDest(&t.Run), &t.Cumulative)...)
	_, err = pgx.ForEachRow(rows, dest, func() error {
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading turns: %w", err)
	}
	return out, nil
}

// Filter narrows a listing; empty fields do not filter.
type Filter struct {
	Start, End                    time.Time
	App, Agent, Customer, Session string
	// Category and Bucket keep runs whose first line is in the bucket.
	Category *category.Category
	Bucket   string
}

// ByCost orders a listing by effective cost instead of start.
type Order int

// The orders.
const (
	ByStart Order = iota
	ByCost
)

// where builds the conditions of f over alias a, which is runs (r) or
// sessions (s).
func (f *Filter) where(a string, p *sqlparam.List) []string {
	conds := []string{a + ".tenant_id = $1"}
	if !f.Start.IsZero() {
		conds = append(conds, fmt.Sprintf("%s.start_time >= %s", a, p.Add(f.Start)))
	}
	if !f.End.IsZero() {
		conds = append(conds, fmt.Sprintf("%s.start_time < %s", a, p.Add(f.End)))
	}
	eq := []struct{ col, v string }{
		{"app", f.App}, {"agent", f.Agent}, {"customer_id", f.Customer},
	}
	if a == "r" {
		eq = append(eq, struct{ col, v string }{"session_id", f.Session})
	}
	for _, e := range eq {
		if e.v != "" {
			conds = append(conds, fmt.Sprintf("%s.%s = %s", a, e.col, p.Add(e.v)))
		}
	}
	if f.Category != nil && a == "r" {
		expr := f.Category.SQL(RunColumn(p), p)
		conds = append(conds, fmt.Sprintf("%s = %s", expr, p.Add(f.Bucket)))
	}
	return conds
}

// RunColumn maps a dimension for runs r joined with their first line's
// dimension set d: the agent is the run's, the rest the first line's.
func RunColumn(p *sqlparam.List) category.Column {
	return func(ref category.Ref) string {
		switch ref.Dim {
		case dims.Agent:
			return "r.agent"
		case dims.AgentName:
			return "r.agent_name"
		case dims.AgentVersion:
			return "r.agent_version"
		case dims.Label:
			return fmt.Sprintf("coalesce(d.labels->>%s::text, '')", p.Add(ref.LabelKey))
		}
		c, _ := dims.Column(ref.Dim)
		return "coalesce(d." + c + ", '')"
	}
}

func orderBy(a string, o Order) string {
	if o == ByCost {
		return fmt.Sprintf(" ORDER BY %[1]s.effective_nanos DESC, %[1]s.start_time DESC", a)
	}
	return fmt.Sprintf(" ORDER BY %s.start_time DESC", a)
}

// ListRuns returns up to limit runs from offset.
func (rd *Reader) ListRuns(ctx context.Context, tenant string, f Filter, o Order,
	offset, limit int,
) ([]Run, error) {
	p := sqlparam.New(tenant)
	conds := f.where("r", p)
	sql := "SELECT " + runColumns + " FROM attribution.runs r"
	if f.Category != nil {
		sql += " LEFT JOIN attribution.dimsets d ON d.tenant_id = r.tenant_id" +
			" AND d.dims_id = r.dims_id"
	}
	sql += " WHERE " + strings.Join(conds, " AND ") + orderBy("r", o) + ", r.run_id" +
		fmt.Sprintf(" OFFSET %s LIMIT %s", p.Add(offset), p.Add(limit))

	rows, err := rd.pool.Query(ctx, sql, p.Args()...)
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	var (
		out []Run
		r   Run
	)
	_, err = pgx.ForEachRow(rows, runDest(&r), func() error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	return out, nil
}

// ListSessions returns up to limit sessions from offset.
func (rd *Reader) ListSessions(ctx context.Context, tenant string, f Filter, o Order,
	offset, limit int,
) ([]Session, error) {
	p := sqlparam.New(tenant)
	conds := f.where("s", p)
	sql := "SELECT " + sessionColumns + " FROM attribution.sessions s WHERE " +
		strings.Join(conds, " AND ") + orderBy("s", o) + ", s.session_id" +
		fmt.Sprintf(" OFFSET %s LIMIT %s", p.Add(offset), p.Add(limit))

	rows, err := rd.pool.Query(ctx, sql, p.Args()...)
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	var (
		out []Session
		s   Session
	)
	_, err = pgx.ForEachRow(rows, sessionDest(&s), func() error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	return out, nil
}
