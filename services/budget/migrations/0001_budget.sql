-- Budgets and the spend they are measured against. Derived tables are keyed
-- by budget_uid, which a budget gets anew each time it is created, so a
-- budget deleted and created again under the same id starts clean.

CREATE TABLE budget.budgets (
    tenant_id      text        NOT NULL,
    budget_id      text        NOT NULL,
    budget_uid     uuid        NOT NULL UNIQUE,
    display_name   text        NOT NULL,
    -- Normalized filters: [{dimension, include, exclude}].
    filters        jsonb       NOT NULL,
    -- The perspective's filters as resolved on the last write.
    perspective_id      text   NOT NULL DEFAULT '',
    perspective_filters jsonb  NOT NULL DEFAULT '[]',
    currency       text        NOT NULL,
    amount_nanos   bigint      NOT NULL CHECK (amount_nanos > 0),
    period         smallint    NOT NULL,
    start_day      date        NOT NULL,
    -- [{kind, basis_points}], sorted.
    thresholds     jsonb       NOT NULL,
    enforcement    smallint    NOT NULL,
    webhook_url    text        NOT NULL DEFAULT '',
    -- Period totals are kept for periods from this day on; earlier spend
    -- is history for the forecast only.
    tracked_from   date        NOT NULL,
    revision       bigint      NOT NULL,
    create_time    timestamptz NOT NULL,
    update_time    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, budget_id)
);

-- One row whose version changes with every budget write, so that each
-- consumer batch can tell cheaply whether its budget set is current.
-- tuple_epoch changes when unused tuples are deleted, so that consumers
-- forget which tuples they believe stored.
CREATE TABLE budget.budget_set (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    version     bigint  NOT NULL,
    tuple_epoch bigint  NOT NULL DEFAULT 0
);
INSERT INTO budget.budget_set (id, version) VALUES (true, 0);

-- Priced records already counted, by arrival day: a duplicate send of the
-- same record within the window is counted once.
CREATE TABLE budget.seen_events (
    tenant_id text NOT NULL,
    priced_id text NOT NULL,
    seen_on   date NOT NULL,
    PRIMARY KEY (tenant_id, priced_id)
);
CREATE INDEX seen_events_seen_on ON budget.seen_events (seen_on);

-- Dimension tuples: the canonical JSON of an event's dimensions.
CREATE TABLE budget.tuples (
    tenant_id text  NOT NULL,
    tuple_id  bytea NOT NULL,
    dims      jsonb NOT NULL,
    PRIMARY KEY (tenant_id, tuple_id)
);

-- Daily spend by dimension tuple: what a new or changed budget is
-- backfilled from, and what ad-hoc forecasts read.
CREATE TABLE budget.spend_daily (
    tenant_id  text   NOT NULL,
    day        date   NOT NULL,
    tuple_id   bytea  NOT NULL,
    currency   text   NOT NULL,
    cost_nanos bigint NOT NULL,
    PRIMARY KEY (tenant_id, day, tuple_id, currency)
);

-- Daily spend per budget: the forecast's input.
CREATE TABLE budget.budget_daily (
    tenant_id  text   NOT NULL,
    budget_uid uuid   NOT NULL,
    day        date   NOT NULL,
    cost_nanos bigint NOT NULL,
    PRIMARY KEY (tenant_id, budget_uid, day)
);

-- Spend per budget period. Consumers add to a row with INSERT ... ON
-- CONFLICT DO UPDATE ... RETURNING, which serializes concurrent members on
-- the row, so each sees the exact total its batch produced. version comes
-- from one sequence and so grows with every write of a budget's periods,
-- recomputations included; in-memory copies keep the highest they saw.
CREATE SEQUENCE budget.period_version;
CREATE TABLE budget.budget_periods (
    tenant_id    text   NOT NULL,
    budget_uid   uuid   NOT NULL,
    period_start date   NOT NULL,
    spent_nanos  bigint NOT NULL,
    version      bigint NOT NULL DEFAULT nextval('budget.period_version'),
    PRIMARY KEY (tenant_id, budget_uid, period_start)
);

-- Raised alerts, which are also the outbox of the alert topic: a row is
-- inserted in the transaction that crossed the threshold, and the
-- publisher sends rows without publish_time. The unique key makes the
-- alert one per budget, period and threshold.
CREATE TABLE budget.alerts (
    alert_id       text        PRIMARY KEY,
    tenant_id      text        NOT NULL,
    budget_id      text        NOT NULL,
    budget_uid     uuid        NOT NULL,
    period_start   date        NOT NULL,
    threshold_kind smallint    NOT NULL,
    basis_points   integer     NOT NULL,
    -- The BudgetAlert as canonical protobuf JSON, published as is.
    payload        text        NOT NULL,
    create_time    timestamptz NOT NULL DEFAULT clock_timestamp(),
    publish_time   timestamptz,
    UNIQUE (tenant_id, budget_uid, period_start, threshold_kind, basis_points)
);
CREATE INDEX alerts_unpublished ON budget.alerts (create_time) WHERE publish_time IS NULL;
CREATE INDEX alerts_by_tenant ON budget.alerts (tenant_id, create_time DESC, alert_id);

CREATE TABLE budget.webhook_deliveries (
    alert_id          text        PRIMARY KEY REFERENCES budget.alerts ON DELETE CASCADE,
    tenant_id         text        NOT NULL,
    url               text        NOT NULL,
    attempts          integer     NOT NULL DEFAULT 0,
    -- NULL once delivered or given up.
    next_attempt_time timestamptz,
    deliver_time      timestamptz,
    fail_time         timestamptz,
    last_error        text        NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_due ON budget.webhook_deliveries (next_attempt_time)
    WHERE next_attempt_time IS NOT NULL;
