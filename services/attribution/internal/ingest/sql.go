package ingest

// Staging tables live for the connection and empty at every commit, so a
// batch's COPY never sees another batch's rows.
const createStagingSQL = `
CREATE TEMP TABLE IF NOT EXISTS stage_dims (
	tenant_id text, dims_id uuid, currency text, provider text, account text,
	project text, model text, model_version text, region text, service_tier text,
	inference_profile text, operation text, app text, agent text, agent_name text,
	agent_version text, customer text, environment text, source text, labels jsonb
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_delta
	(daily boolean, LIKE attribution.rollup_kind_day, events bigint, requests bigint,
	 runs bigint, sessions bigint, unpriced bigint, list_nanos bigint,
	 effective_nanos bigint) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_steps
	(LIKE attribution.steps) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_runs
	(LIKE attribution.runs) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_sessions
	(LIKE attribution.sessions) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_outcomes
	(LIKE attribution.outcomes) ON COMMIT DELETE ROWS`

// missingPartitionsSQL returns the days of $1 that have no partition.
const missingPartitionsSQL = `
SELECT d::date FROM unnest($1::date[]) AS d
WHERE to_regclass(format('attribution.lines_%s', to_char(d, 'YYYYMMDD'))) IS NULL`

// createPartitionSQL creates the partition of one day; %[1]s is the day
// as YYYYMMDD, %[2]s and %[3]s the bounds as YYYY-MM-DD.
const createPartitionSQL = `
CREATE TABLE IF NOT EXISTS attribution.lines_%[1]s PARTITION OF attribution.lines
FOR VALUES FROM ('%[2]s') TO ('%[3]s')`

// The lookups below probe a primary key once per key, in a LATERAL
// subquery that LIMIT or OFFSET keeps the planner from flattening: a
// freshly filled table often has statistics too stale for the planner to
// choose the index by itself, and a scan of the table per batch would make
// ingestion slower as the store grows.

// storedLinesSQL returns which of a tenant's lines of one day are stored
// already.
const storedLinesSQL = `
SELECT $1::text, l.priced_id FROM unnest($3::text[]) AS k(priced_id)
CROSS JOIN LATERAL (
	SELECT priced_id FROM attribution.lines
	WHERE tenant_id = $1 AND day = $2 AND priced_id = k.priced_id LIMIT 1) l`

// originalStatusSQL returns the current pricing status of the original
// lines that corrections correct.
const originalStatusSQL = `
SELECT $1::text, l.priced_id, l.current_status FROM unnest($3::text[]) AS k(priced_id)
CROSS JOIN LATERAL (
	SELECT priced_id, current_status FROM attribution.lines
	WHERE tenant_id = $1 AND day = $2 AND priced_id = k.priced_id LIMIT 1) l`

const updateStatusSQL = `
UPDATE attribution.lines SET current_status = $4
WHERE tenant_id = $1 AND day = $2 AND priced_id = $3`

// lineColumns are the columns the line COPY writes, in order.
var lineColumns = []string{
	"tenant_id", "day", "priced_id", "event_id", "corrects_event_id", "price_version",
	"usage_time", "end_time", "pricing_status", "current_status", "currency", "list_nanos",
	"effective_nanos", "request_count", "line_kinds", "line_amounts", "line_list",
	"line_effective", "provider", "model", "model_version", "operation", "region",
	"service_tier", "inference_profile", "account", "project", "api_key_id", "app",
	"agent_id", "agent_name", "agent_version", "session_id", "run_id", "step_id",
	"parent_step_id", "step_kind", "tool_name", "customer_id", "user_id", "environment",
	"source", "trace_id", "labels",
}

// storedRunsSQL loads the runs a batch touches.
const storedRunsSQL = `
SELECT r.tenant_id, r.run_id, r.agent, r.agent_id, r.agent_name, r.agent_version,
       r.session_id
FROM unnest($2::text[]) AS k(run_id)
CROSS JOIN LATERAL (
	SELECT * FROM attribution.runs WHERE tenant_id = $1 AND run_id = k.run_id LIMIT 1) r`

// joinStepsSQL loads what the trace join needs of the stored steps of the
// runs a batch touches.
const joinStepsSQL = `
SELECT ` + stepJoinColumns + `
FROM unnest($2::text[]) AS k(run_id)
CROSS JOIN LATERAL (
	SELECT * FROM attribution.steps WHERE tenant_id = $1 AND run_id = k.run_id OFFSET 0) s`

// movedStepsSQL loads the totals and dimension sets of steps whose
// attribution changes.
const movedStepsSQL = `
SELECT s.tenant_id, s.run_id, s.step_id, s.dims_id, s.bucket, s.start_time, s.end_time,
       s.events, s.requests, s.runs, s.sessions, s.unpriced, s.list_nanos,
       s.effective_nanos, s.kind_quantity, s.kind_list, s.kind_effective,
       d.currency, d.provider, d.account, d.project, d.model, d.model_version, d.region,
       d.service_tier, d.inference_profile, d.operation, d.app, d.customer,
       d.environment, d.source, d.labels
FROM unnest($2::text[], $3::text[]) AS k(run_id, step_id)
CROSS JOIN LATERAL (
	SELECT * FROM attribution.steps
	WHERE tenant_id = $1 AND run_id = k.run_id AND step_id = k.step_id LIMIT 1) s
JOIN attribution.dimsets d ON d.tenant_id = s.tenant_id AND d.dims_id = s.dims_id`

// storedSessionsSQL returns which sessions exist.
const storedSessionsSQL = `
SELECT $1::text, s.session_id FROM unnest($2::text[]) AS k(session_id)
CROSS JOIN LATERAL (
	SELECT session_id FROM attribution.sessions
	WHERE tenant_id = $1 AND session_id = k.session_id LIMIT 1) s`

// storedDimsSQL returns which of a tenant's dimension sets are stored.
const storedDimsSQL = `
SELECT $1::text, d.dims_id FROM unnest($2::uuid[]) AS k(dims_id)
CROSS JOIN LATERAL (
	SELECT dims_id FROM attribution.dimsets
	WHERE tenant_id = $1 AND dims_id = k.dims_id LIMIT 1) d`

const insertDimsSQL = `
INSERT INTO attribution.dimsets SELECT * FROM stage_dims
ON CONFLICT (tenant_id, dims_id) DO NOTHING`

// upsertStepsSQL adds the batch's totals to steps and sets their resolved
// attribution; what a step is (kind, parent, own agent) never changes.
const upsertStepsSQL = `
INSERT INTO attribution.steps AS s SELECT * FROM stage_steps
ON CONFLICT (tenant_id, run_id, step_id) DO UPDATE SET
	agent_id = EXCLUDED.agent_id,
	agent_name = EXCLUDED.agent_name,
	agent_version = EXCLUDED.agent_version,
	session_id = EXCLUDED.session_id,
	dims_id = EXCLUDED.dims_id,
	start_time = least(s.start_time, EXCLUDED.start_time),
	end_time = greatest(s.end_time, EXCLUDED.end_time),
	events = s.events + EXCLUDED.events,
	requests = s.requests + EXCLUDED.requests,
	runs = s.runs + EXCLUDED.runs,
	sessions = s.sessions + EXCLUDED.sessions,
	unpriced = s.unpriced + EXCLUDED.unpriced,
	list_nanos = s.list_nanos + EXCLUDED.list_nanos,
	effective_nanos = s.effective_nanos + EXCLUDED.effective_nanos,
	kind_quantity = attribution.add_arrays(s.kind_quantity, EXCLUDED.kind_quantity),
	kind_list = attribution.add_arrays(s.kind_list, EXCLUDED.kind_list),
	kind_effective = attribution.add_arrays(s.kind_effective, EXCLUDED.kind_effective)`

// upsertRunsSQL adds the batch's totals to runs. The writer decided the
// resolved agent and session, knowing the stored ones; descriptive
// attributes keep their first non-empty value.
const upsertRunsSQL = `
INSERT INTO attribution.runs AS r SELECT * FROM stage_runs
ON CONFLICT (tenant_id, run_id) DO UPDATE SET
	agent = EXCLUDED.agent,
	agent_id = EXCLUDED.agent_id,
	agent_name = EXCLUDED.agent_name,
	agent_version = EXCLUDED.agent_version,
	session_id = EXCLUDED.session_id,
	trace_id = CASE WHEN r.trace_id = '' THEN EXCLUDED.trace_id ELSE r.trace_id END,
	app = CASE WHEN r.app = '' THEN EXCLUDED.app ELSE r.app END,
	customer_id = CASE WHEN r.customer_id = '' THEN EXCLUDED.customer_id
	                   ELSE r.customer_id END,
	environment = CASE WHEN r.environment = '' THEN EXCLUDED.environment
	                   ELSE r.environment END,
	start_time = least(r.start_time, EXCLUDED.start_time),
	end_time = greatest(r.end_time, EXCLUDED.end_time),
	steps = r.steps + EXCLUDED.steps,
	events = r.events + EXCLUDED.events,
	requests = r.requests + EXCLUDED.requests,
	errors = r.errors + EXCLUDED.errors,
	unpriced = r.unpriced + EXCLUDED.unpriced,
	tokens = r.tokens + EXCLUDED.tokens,
	list_nanos = r.list_nanos + EXCLUDED.list_nanos,
	effective_nanos = r.effective_nanos + EXCLUDED.effective_nanos`

const upsertSessionsSQL = `
INSERT INTO attribution.sessions AS s SELECT * FROM stage_sessions
ON CONFLICT (tenant_id, session_id) DO UPDATE SET
	agent = CASE WHEN s.agent = '' THEN EXCLUDED.agent ELSE s.agent END,
	app = CASE WHEN s.app = '' THEN EXCLUDED.app ELSE s.app END,
	customer_id = CASE WHEN s.customer_id = '' THEN EXCLUDED.customer_id
	                   ELSE s.customer_id END,
	environment = CASE WHEN s.environment = '' THEN EXCLUDED.environment
	                   ELSE s.environment END,
	start_time = least(s.start_time, EXCLUDED.start_time),
	end_time = greatest(s.end_time, EXCLUDED.end_time),
	runs = s.runs + EXCLUDED.runs,
	events = s.events + EXCLUDED.events,
	requests = s.requests + EXCLUDED.requests,
	unpriced = s.unpriced + EXCLUDED.unpriced,
	list_nanos = s.list_nanos + EXCLUDED.list_nanos,
	effective_nanos = s.effective_nanos + EXCLUDED.effective_nanos`

const insertOutcomesSQL = `
INSERT INTO attribution.outcomes SELECT * FROM stage_outcomes
ON CONFLICT (tenant_id, outcome_id) DO NOTHING`

// exactStepsSQL loads the join state of single steps outside traces.
const exactStepsSQL = `
SELECT ` + stepJoinColumns + `
FROM unnest($2::text[], $3::text[]) AS k(run_id, step_id)
CROSS JOIN LATERAL (
	SELECT * FROM attribution.steps
	WHERE tenant_id = $1 AND run_id = k.run_id AND step_id = k.step_id LIMIT 1) s`

// stepJoinColumns are what the trace join needs of a stored step.
const stepJoinColumns = `s.tenant_id, s.run_id, s.step_id, s.trace_id, s.event_id,
       s.parent_step_id, s.step_kind, s.start_time, s.own_agent_id, s.own_agent_name,
       s.own_agent_version, s.own_session_id, s.agent_id, s.agent_name, s.agent_version,
       s.session_id, s.dims_id, s.bucket, s.runs`
