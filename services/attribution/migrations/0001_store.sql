-- The attribution store (DESIGN §6–§7). Every table is keyed by tenant
-- first, and every query filters by it.

-- Raw priced lines, one per PricedUsage record (first pricings and
-- corrections alike), partitioned by the UTC day of the usage. The primary
-- key drops a record seen twice; retention drops whole partitions.
-- Attribution columns hold what the event carried; the attribution that
-- the trace join resolved later lives on steps and in the rollups.
CREATE TABLE attribution.lines (
    tenant_id         text        NOT NULL,
    day               date        NOT NULL,
    priced_id         text        NOT NULL,
    event_id          text        NOT NULL,
    corrects_event_id text        NOT NULL,
    price_version     bigint      NOT NULL,
    usage_time        timestamptz NOT NULL,
    end_time          timestamptz,
    pricing_status    smallint    NOT NULL,
    -- Latest pricing status of an original line, moved by corrections.
    current_status    smallint    NOT NULL,
    currency          text        NOT NULL,
    list_nanos        bigint      NOT NULL,
    effective_nanos   bigint      NOT NULL,
    request_count     bigint      NOT NULL,
    -- Quantity kind, amount, list and effective cost of each cost line.
    line_kinds        smallint[]  NOT NULL,
    line_amounts      bigint[]    NOT NULL,
    line_list         bigint[]    NOT NULL,
    line_effective    bigint[]    NOT NULL,
    provider          text        NOT NULL,
    model             text        NOT NULL,
    model_version     text        NOT NULL,
    operation         text        NOT NULL,
    region            text        NOT NULL,
    service_tier      text        NOT NULL,
    inference_profile text        NOT NULL,
    account           text        NOT NULL,
    project           text        NOT NULL,
    api_key_id        text        NOT NULL,
    app               text        NOT NULL,
    agent_id          text        NOT NULL,
    agent_name        text        NOT NULL,
    agent_version     text        NOT NULL,
    session_id        text        NOT NULL,
    run_id            text        NOT NULL,
    step_id           text        NOT NULL,
    parent_step_id    text        NOT NULL,
    step_kind         smallint    NOT NULL,
    tool_name         text        NOT NULL,
    customer_id       text        NOT NULL,
    user_id           text        NOT NULL,
    environment       text        NOT NULL,
    source            text        NOT NULL,
    trace_id          text        NOT NULL,
    labels            jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, day, priced_id)
) PARTITION BY RANGE (day);

-- A dimension set is one distinct tuple of the rollup dimensions. Rollups
-- refer to it by dims_id, a hash of the tuple computed by the writer, so
-- that they stay narrow and the explorer filters and groups on this small
-- table before touching them.
CREATE TABLE attribution.dimsets (
    tenant_id         text  NOT NULL,
    dims_id           uuid  NOT NULL,
    currency          text  NOT NULL,
    provider          text  NOT NULL,
    account           text  NOT NULL,
    project           text  NOT NULL,
    model             text  NOT NULL,
    model_version     text  NOT NULL,
    region            text  NOT NULL,
    service_tier      text  NOT NULL,
    inference_profile text  NOT NULL,
    operation         text  NOT NULL,
    app               text  NOT NULL,
    agent             text  NOT NULL,
    agent_name        text  NOT NULL,
    agent_version     text  NOT NULL,
    customer          text  NOT NULL,
    environment       text  NOT NULL,
    source            text  NOT NULL,
    labels            jsonb NOT NULL,
    PRIMARY KEY (tenant_id, dims_id)
);

-- Rollups by hour and by UTC day. Money is integer nanos of the dimension
-- set's currency. runs and sessions count the runs and sessions first seen
-- on the bucket's lines, so that they add up across buckets. The hourly
-- rollup also keeps quantity and money per quantity kind (the token type
-- dimension); for whole days that is rollup_kind_day, so that rollup_day,
-- which long-range queries read, stays narrow. Kind "other" holds money no
-- cost line explains, so that the kinds add up to the totals.
CREATE TABLE attribution.rollup_day (
    tenant_id          text        NOT NULL,
    bucket             timestamptz NOT NULL,
    dims_id            uuid        NOT NULL,
    events             bigint      NOT NULL,
    requests           bigint      NOT NULL,
    runs               bigint      NOT NULL,
    sessions           bigint      NOT NULL,
    unpriced           bigint      NOT NULL,
    list_nanos         bigint      NOT NULL,
    effective_nanos    bigint      NOT NULL,
    tok_input          bigint      NOT NULL,
    tok_cache_read     bigint      NOT NULL,
    tok_cache_write_5m bigint      NOT NULL,
    tok_cache_write_1h bigint      NOT NULL,
    tok_output         bigint      NOT NULL,
    tok_reasoning      bigint      NOT NULL,
    tok_input_audio    bigint      NOT NULL,
    tok_output_audio   bigint      NOT NULL,
    tok_input_image    bigint      NOT NULL,
    tok_output_image   bigint      NOT NULL,
    PRIMARY KEY (tenant_id, bucket, dims_id)
);

CREATE TABLE attribution.rollup_hour (
    LIKE attribution.rollup_day INCLUDING DEFAULTS,
    qty_requests       bigint      NOT NULL,
    qty_web_searches   bigint      NOT NULL,
    qty_images         bigint      NOT NULL,
    qty_audio_seconds  bigint      NOT NULL,
    qty_characters     bigint      NOT NULL,
    qty_compute_seconds bigint      NOT NULL,
    list_other         bigint      NOT NULL,
    list_input         bigint      NOT NULL,
    list_cache_read    bigint      NOT NULL,
    list_cache_write_5m bigint      NOT NULL,
    list_cache_write_1h bigint      NOT NULL,
    list_output        bigint      NOT NULL,
    list_reasoning     bigint      NOT NULL,
    list_input_audio   bigint      NOT NULL,
    list_output_audio  bigint      NOT NULL,
    list_input_image   bigint      NOT NULL,
    list_output_image  bigint      NOT NULL,
    list_requests      bigint      NOT NULL,
    list_web_searches  bigint      NOT NULL,
    list_images        bigint      NOT NULL,
    list_audio_seconds bigint      NOT NULL,
    list_characters    bigint      NOT NULL,
    list_compute_seconds bigint      NOT NULL,
    eff_other          bigint      NOT NULL,
    eff_input          bigint      NOT NULL,
    eff_cache_read     bigint      NOT NULL,
    eff_cache_write_5m bigint      NOT NULL,
    eff_cache_write_1h bigint      NOT NULL,
    eff_output         bigint      NOT NULL,
    eff_reasoning      bigint      NOT NULL,
    eff_input_audio    bigint      NOT NULL,
    eff_output_audio   bigint      NOT NULL,
    eff_input_image    bigint      NOT NULL,
    eff_output_image   bigint      NOT NULL,
    eff_requests       bigint      NOT NULL,
    eff_web_searches   bigint      NOT NULL,
    eff_images         bigint      NOT NULL,
    eff_audio_seconds  bigint      NOT NULL,
    eff_characters     bigint      NOT NULL,
    eff_compute_seconds bigint      NOT NULL,
    PRIMARY KEY (tenant_id, bucket, dims_id)
);

CREATE TABLE attribution.rollup_kind_day (
    tenant_id          text        NOT NULL,
    bucket             timestamptz NOT NULL,
    dims_id            uuid        NOT NULL,
    tok_input          bigint      NOT NULL,
    tok_cache_read     bigint      NOT NULL,
    tok_cache_write_5m bigint      NOT NULL,
    tok_cache_write_1h bigint      NOT NULL,
    tok_output         bigint      NOT NULL,
    tok_reasoning      bigint      NOT NULL,
    tok_input_audio    bigint      NOT NULL,
    tok_output_audio   bigint      NOT NULL,
    tok_input_image    bigint      NOT NULL,
    tok_output_image   bigint      NOT NULL,
    qty_requests       bigint      NOT NULL,
    qty_web_searches   bigint      NOT NULL,
    qty_images         bigint      NOT NULL,
    qty_audio_seconds  bigint      NOT NULL,
    qty_characters     bigint      NOT NULL,
    qty_compute_seconds bigint      NOT NULL,
    list_other         bigint      NOT NULL,
    list_input         bigint      NOT NULL,
    list_cache_read    bigint      NOT NULL,
    list_cache_write_5m bigint      NOT NULL,
    list_cache_write_1h bigint      NOT NULL,
    list_output        bigint      NOT NULL,
    list_reasoning     bigint      NOT NULL,
    list_input_audio   bigint      NOT NULL,
    list_output_audio  bigint      NOT NULL,
    list_input_image   bigint      NOT NULL,
    list_output_image  bigint      NOT NULL,
    list_requests      bigint      NOT NULL,
    list_web_searches  bigint      NOT NULL,
    list_images        bigint      NOT NULL,
    list_audio_seconds bigint      NOT NULL,
    list_characters    bigint      NOT NULL,
    list_compute_seconds bigint      NOT NULL,
    eff_other          bigint      NOT NULL,
    eff_input          bigint      NOT NULL,
    eff_cache_read     bigint      NOT NULL,
    eff_cache_write_5m bigint      NOT NULL,
    eff_cache_write_1h bigint      NOT NULL,
    eff_output         bigint      NOT NULL,
    eff_reasoning      bigint      NOT NULL,
    eff_input_audio    bigint      NOT NULL,
    eff_output_audio   bigint      NOT NULL,
    eff_input_image    bigint      NOT NULL,
    eff_output_image   bigint      NOT NULL,
    eff_requests       bigint      NOT NULL,
    eff_web_searches   bigint      NOT NULL,
    eff_images         bigint      NOT NULL,
    eff_audio_seconds  bigint      NOT NULL,
    eff_characters     bigint      NOT NULL,
    eff_compute_seconds bigint      NOT NULL,
    PRIMARY KEY (tenant_id, bucket, dims_id)
);

-- Recent rollup rows are updated many times; room on their pages lets
-- PostgreSQL update them in place.
ALTER TABLE attribution.rollup_hour SET (fillfactor = 80);
ALTER TABLE attribution.rollup_day SET (fillfactor = 80);
ALTER TABLE attribution.rollup_kind_day SET (fillfactor = 80);

-- One row per step of a run: the join state (own and resolved agent and
-- session), and the step's totals over its lines, corrections included,
-- which is what moves between rollup rows when the step is re-attributed.
-- kind_* arrays are indexed by quantity kind + 1 (index 1 is kind 0).
CREATE TABLE attribution.steps (
    tenant_id         text        NOT NULL,
    run_id            text        NOT NULL,
    step_id           text        NOT NULL,
    trace_id          text        NOT NULL,
    event_id          text        NOT NULL,
    parent_step_id    text        NOT NULL,
    step_kind         smallint    NOT NULL,
    own_agent_id      text        NOT NULL,
    own_agent_name    text        NOT NULL,
    own_agent_version text        NOT NULL,
    own_session_id    text        NOT NULL,
    agent_id          text        NOT NULL,
    agent_name        text        NOT NULL,
    agent_version     text        NOT NULL,
    session_id        text        NOT NULL,
    dims_id           uuid        NOT NULL,
    bucket            timestamptz NOT NULL,
    start_time        timestamptz NOT NULL,
    end_time          timestamptz NOT NULL,
    provider          text        NOT NULL,
    model             text        NOT NULL,
    tool_name         text        NOT NULL,
    operation         text        NOT NULL,
    status            smallint    NOT NULL,
    currency          text        NOT NULL,
    events            bigint      NOT NULL,
    requests          bigint      NOT NULL,
    runs              bigint      NOT NULL,
    sessions          bigint      NOT NULL,
    unpriced          bigint      NOT NULL,
    list_nanos        bigint      NOT NULL,
    effective_nanos   bigint      NOT NULL,
    kind_quantity     bigint[]    NOT NULL,
    kind_list         bigint[]    NOT NULL,
    kind_effective    bigint[]    NOT NULL,
    PRIMARY KEY (tenant_id, run_id, step_id)
);

-- A run is one agent invocation (a trace). agent and session are the
-- resolved ones; dims_id is the dimension set of the run's first line, for
-- cost categories over runs.
CREATE TABLE attribution.runs (
    tenant_id       text        NOT NULL,
    run_id          text        NOT NULL,
    trace_id        text        NOT NULL,
    agent           text        NOT NULL,
    agent_id        text        NOT NULL,
    agent_name      text        NOT NULL,
    agent_version   text        NOT NULL,
    session_id      text        NOT NULL,
    app             text        NOT NULL,
    customer_id     text        NOT NULL,
    environment     text        NOT NULL,
    dims_id         uuid        NOT NULL,
    start_time      timestamptz NOT NULL,
    end_time        timestamptz NOT NULL,
    currency        text        NOT NULL,
    steps           bigint      NOT NULL,
    events          bigint      NOT NULL,
    requests        bigint      NOT NULL,
    errors          bigint      NOT NULL,
    unpriced        bigint      NOT NULL,
    tokens          bigint      NOT NULL,
    list_nanos      bigint      NOT NULL,
    effective_nanos bigint      NOT NULL,
    PRIMARY KEY (tenant_id, run_id)
);

CREATE INDEX runs_by_start ON attribution.runs (tenant_id, start_time);
CREATE INDEX runs_by_session ON attribution.runs (tenant_id, session_id, start_time)
    WHERE session_id <> '';

-- A session is a conversation: the runs that share a session id.
CREATE TABLE attribution.sessions (
    tenant_id       text        NOT NULL,
    session_id      text        NOT NULL,
    agent           text        NOT NULL,
    app             text        NOT NULL,
    customer_id     text        NOT NULL,
    environment     text        NOT NULL,
    dims_id         uuid        NOT NULL,
    start_time      timestamptz NOT NULL,
    end_time        timestamptz NOT NULL,
    currency        text        NOT NULL,
    runs            bigint      NOT NULL,
    events          bigint      NOT NULL,
    requests        bigint      NOT NULL,
    unpriced        bigint      NOT NULL,
    list_nanos      bigint      NOT NULL,
    effective_nanos bigint      NOT NULL,
    PRIMARY KEY (tenant_id, session_id)
);

CREATE INDEX sessions_by_start ON attribution.sessions (tenant_id, start_time);

-- Business outcomes, idempotent by outcome id.
CREATE TABLE attribution.outcomes (
    tenant_id   text        NOT NULL,
    outcome_id  text        NOT NULL,
    time        timestamptz NOT NULL,
    type        text        NOT NULL,
    currency    text        NOT NULL,
    value_nanos bigint,
    session_id  text        NOT NULL,
    run_id      text        NOT NULL,
    agent_id    text        NOT NULL,
    customer_id text        NOT NULL,
    app         text        NOT NULL,
    labels      jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, outcome_id)
);

CREATE INDEX outcomes_by_time ON attribution.outcomes (tenant_id, time);

-- Cost Categories and Perspectives are kept as the protobuf JSON of their
-- definitions, validated on write and evaluated at query time.
CREATE TABLE attribution.categories (
    tenant_id   text        NOT NULL,
    category_id text        NOT NULL,
    definition  jsonb       NOT NULL,
    revision    bigint      NOT NULL,
    create_time timestamptz NOT NULL,
    update_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, category_id)
);

CREATE TABLE attribution.perspectives (
    tenant_id      text        NOT NULL,
    perspective_id text        NOT NULL,
    definition     jsonb       NOT NULL,
    revision       bigint      NOT NULL,
    create_time    timestamptz NOT NULL,
    update_time    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, perspective_id)
);

-- add_arrays adds two arrays element by element; a missing element counts
-- as zero. Rollup and step upserts use it on the per-kind arrays.
CREATE FUNCTION attribution.add_arrays(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY(SELECT coalesce(x, 0) + coalesce(y, 0) FROM unnest(a, b) AS u(x, y));
