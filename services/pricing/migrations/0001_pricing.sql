-- Tenant rates: negotiated discounts, fixed prices, custom models and Azure
-- deployment mappings, each effective-dated. A deleted rate stays for the
-- record (priced events name it in price_ref) but prices nothing.
CREATE TABLE pricing.tenant_rates (
    tenant_id               text        NOT NULL,
    rate_id                 text        NOT NULL,
    kind                    text        NOT NULL
        CHECK (kind IN ('discount', 'fixed_price', 'custom_model', 'deployment')),
    provider                text        NOT NULL DEFAULT '',
    model                   text        NOT NULL DEFAULT '',
    account                 text        NOT NULL DEFAULT '',
    -- NULL is an open end.
    valid_from              timestamptz,
    valid_to                timestamptz,
    percent_off_bp          integer     NOT NULL DEFAULT 0
        CHECK (percent_off_bp BETWEEN 0 AND 10000),
    quantity_kind           integer     NOT NULL DEFAULT 0,
    price_per_million_nanos bigint      NOT NULL DEFAULT 0 CHECK (price_per_million_nanos >= 0),
    -- Custom models: parallel arrays of quantity kinds and their prices.
    unit_kinds              integer[]   NOT NULL DEFAULT '{}',
    unit_prices             bigint[]    NOT NULL DEFAULT '{}',
    price_per_hour_nanos    bigint      NOT NULL DEFAULT 0 CHECK (price_per_hour_nanos >= 0),
    deployment              text        NOT NULL DEFAULT '',
    description             text        NOT NULL DEFAULT '',
    -- The value of pricing.rates_revision when the row last changed.
    revision                bigint      NOT NULL,
    create_time             timestamptz NOT NULL DEFAULT now(),
    delete_time             timestamptz,
    PRIMARY KEY (tenant_id, rate_id),
    CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_from < valid_to),
    CHECK (cardinality(unit_kinds) = cardinality(unit_prices))
);

CREATE INDEX tenant_rates_revision ON pricing.tenant_rates (revision);

-- One counter bumped by every rate change. Its row lock serializes rate
-- writes, so revisions commit in order and a poller that remembers the
-- last revision it saw never misses a change.
CREATE TABLE pricing.rates_revision (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision  bigint  NOT NULL
);
INSERT INTO pricing.rates_revision (revision) VALUES (0);

-- The ledger: every event as last priced, which repricing works from.
-- cost holds the PricedUsage without its usage; list and effective totals
-- are NULL when the event has no such cost (never 0 for "unknown").
-- TODO: no retention yet; the ledger grows with every event. Partitioning
-- by start_time (as DESIGN §7 does for raw priced lines) would let old
-- history be dropped once it can no longer be repriced.
CREATE TABLE pricing.ledger (
    tenant_id       text        NOT NULL,
    event_id        text        NOT NULL,
    start_time      timestamptz NOT NULL,
    record_key      bytea       NOT NULL,
    provider        text        NOT NULL,
    model           text        NOT NULL,
    status          smallint    NOT NULL,
    currency        text        NOT NULL,
    list_nanos      bigint,
    effective_nanos bigint,
    price_version   bigint      NOT NULL,
    priced_time     timestamptz NOT NULL,
    usage           bytea       NOT NULL,
    cost            bytea       NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

CREATE INDEX ledger_by_time ON pricing.ledger (tenant_id, start_time, event_id);

-- Reprice jobs. The cursor and counts move in the same transaction as the
-- ledger rows and the outbox, so a resumed job neither skips nor recounts.
CREATE TABLE pricing.reprices (
    tenant_id             text        NOT NULL,
    reprice_id            text        NOT NULL,
    range_start           timestamptz NOT NULL,
    range_end             timestamptz NOT NULL,
    reason                text        NOT NULL,
    state                 text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    cursor_time           timestamptz NOT NULL,
    cursor_event          text        NOT NULL DEFAULT '',
    scanned               bigint      NOT NULL DEFAULT 0,
    corrected             bigint      NOT NULL DEFAULT 0,
    newly_priced          bigint      NOT NULL DEFAULT 0,
    unpriced              bigint      NOT NULL DEFAULT 0,
    currency              text        NOT NULL DEFAULT '',
    list_delta_nanos      bigint      NOT NULL DEFAULT 0,
    effective_delta_nanos bigint      NOT NULL DEFAULT 0,
    error                 text        NOT NULL DEFAULT '',
    lease_owner           text        NOT NULL DEFAULT '',
    lease_until           timestamptz,
    create_time           timestamptz NOT NULL DEFAULT now(),
    update_time           timestamptz NOT NULL DEFAULT now(),
    finish_time           timestamptz,
    PRIMARY KEY (tenant_id, reprice_id),
    CHECK (range_start < range_end)
);

CREATE INDEX reprices_open ON pricing.reprices (create_time)
    WHERE state IN ('pending', 'running');

-- Corrections decided but not yet known to be on Kafka. A chunk writes
-- them with the ledger and the cursor; they are deleted once a Kafka
-- transaction carrying them has committed.
CREATE TABLE pricing.reprice_outbox (
    tenant_id  text   NOT NULL,
    reprice_id text   NOT NULL,
    priced_id  text   NOT NULL,
    record_key bytea  NOT NULL,
    value      bytea  NOT NULL,
    PRIMARY KEY (tenant_id, reprice_id, priced_id)
);
