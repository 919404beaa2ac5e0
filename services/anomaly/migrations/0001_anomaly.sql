-- The anomaly service's schema. Every table has tenant_id and every query
-- filters by it, except the consumer's own bookkeeping (runs by
-- partition, watermarks, outbox), which is not tenant data.

-- Detection settings a tenant chose, as JSON; absent means defaults.
CREATE TABLE anomaly.settings (
	tenant_id   text PRIMARY KEY,
	settings    jsonb NOT NULL,
	update_time timestamptz NOT NULL
);

-- Spend series at 5-minute and hourly resolution. series_key names the
-- dimension values ("" is the tenant's total, "app=x&model=y" a pair).
CREATE TABLE anomaly.series_5m (
	tenant_id  text        NOT NULL,
	series_key text        NOT NULL,
	currency   text        NOT NULL,
	bucket     timestamptz NOT NULL,
	cost_nanos bigint      NOT NULL,
	events     bigint      NOT NULL,
	PRIMARY KEY (tenant_id, series_key, currency, bucket)
);
CREATE INDEX series_5m_bucket ON anomaly.series_5m (bucket);

CREATE TABLE anomaly.series_1h (
	tenant_id  text        NOT NULL,
	series_key text        NOT NULL,
	currency   text        NOT NULL,
	bucket     timestamptz NOT NULL,
	cost_nanos bigint      NOT NULL,
	events     bigint      NOT NULL,
	PRIMARY KEY (tenant_id, series_key, currency, bucket)
);
CREATE INDEX series_1h_bucket ON anomaly.series_1h (bucket);

-- Open runs of the real-time detectors, by the partition that owns them.
CREATE TABLE anomaly.runs (
	tenant_id text        NOT NULL,
	run_key   text        NOT NULL,
	partition integer     NOT NULL,
	state     bytea       NOT NULL,
	last_time timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, run_key)
);
CREATE INDEX runs_partition ON anomaly.runs (partition);

-- Open sessions. A session's runs may sit in several partitions, so its
-- cost is summed here, under the row lock, not in memory.
CREATE TABLE anomaly.sessions (
	tenant_id      text        NOT NULL,
	session_id     text        NOT NULL,
	currency       text        NOT NULL,
	cost_nanos     bigint      NOT NULL,
	agent          text        NOT NULL,
	app            text        NOT NULL,
	first_time     timestamptz NOT NULL,
	last_time      timestamptz NOT NULL,
	alert_severity smallint    NOT NULL DEFAULT 0,
	alert_actual   bigint      NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant_id, session_id)
);
CREATE INDEX sessions_last_time ON anomaly.sessions (last_time);

-- Baseline histograms: per tenant, subject (1 run cost, 2 session cost,
-- 3 tool repeats), scope and event-time day, observations per bucket.
CREATE TABLE anomaly.baselines (
	tenant_id text     NOT NULL,
	subject   smallint NOT NULL,
	scope     text     NOT NULL,
	day       integer  NOT NULL,
	bucket    smallint NOT NULL,
	n         bigint   NOT NULL,
	PRIMARY KEY (tenant_id, subject, scope, day, bucket)
);

-- Spend seen per scope (tenant "", project, app) and item (provider,
-- model; "" is the scope itself), for new-spend detection.
CREATE TABLE anomaly.spend_seen (
	tenant_id  text        NOT NULL,
	scope      text        NOT NULL,
	item       text        NOT NULL,
	currency   text        NOT NULL,
	first_time timestamptz NOT NULL,
	cost_nanos bigint      NOT NULL,
	alerted    boolean     NOT NULL DEFAULT false,
	PRIMARY KEY (tenant_id, scope, item)
);

-- The latest event time each consumed partition has reached; the spike
-- evaluator judges a bucket once every active partition is past it.
CREATE TABLE anomaly.watermarks (
	consumer_group text        NOT NULL,
	topic          text        NOT NULL,
	partition      integer     NOT NULL,
	watermark      timestamptz NOT NULL,
	update_time    timestamptz NOT NULL,
	PRIMARY KEY (consumer_group, topic, partition)
);

-- Anomalies as of their latest revision.
CREATE TABLE anomaly.anomalies (
	tenant_id        text        NOT NULL,
	anomaly_id       text        NOT NULL,
	kind             smallint    NOT NULL,
	pattern          text        NOT NULL,
	scope            jsonb       NOT NULL,
	window_start     timestamptz NOT NULL,
	window_end       timestamptz NOT NULL,
	actual_nanos     bigint      NOT NULL,
	expected_nanos   bigint      NOT NULL,
	currency         text        NOT NULL,
	severity         smallint    NOT NULL,
	status           smallint    NOT NULL,
	count            bigint      NOT NULL,
	example_runs     text[]      NOT NULL,
	example_sessions text[]      NOT NULL,
	summary          text        NOT NULL,
	detect_time      timestamptz NOT NULL,
	update_time      timestamptz NOT NULL,
	revision         bigint      NOT NULL,
	suppress_scope   jsonb       NOT NULL,
	suppress_measure text        NOT NULL,
	measure          bigint      NOT NULL,
	note             text        NOT NULL DEFAULT '',
	PRIMARY KEY (tenant_id, anomaly_id)
);
CREATE INDEX anomalies_listing ON anomaly.anomalies (tenant_id, detect_time DESC, anomaly_id DESC);

-- Alert records waiting for the publisher: written in the transaction
-- that changed the anomaly, deleted once Kafka has them.
CREATE TABLE anomaly.outbox (
	seq         bigserial   PRIMARY KEY,
	tenant_id   text        NOT NULL,
	anomaly_id  text        NOT NULL,
	revision    bigint      NOT NULL,
	record_key  bytea       NOT NULL,
	payload     bytea       NOT NULL,
	create_time timestamptz NOT NULL DEFAULT now()
);

-- Patterns that marked false positives keep quiet below a limit.
CREATE TABLE anomaly.suppressions (
	tenant_id      text        NOT NULL,
	suppression_id text        NOT NULL,
	kind           smallint    NOT NULL,
	scope          jsonb       NOT NULL,
	measure        text        NOT NULL,
	limit_value    bigint      NOT NULL,
	anomaly_id     text        NOT NULL,
	note           text        NOT NULL,
	create_time    timestamptz NOT NULL,
	expire_time    timestamptz,
	PRIMARY KEY (tenant_id, suppression_id)
);

-- Spike episodes in progress: a series stays in one anomaly while it
-- keeps being anomalous, with gaps shorter than the cool-down.
CREATE TABLE anomaly.spike_episodes (
	tenant_id      text        NOT NULL,
	series_key     text        NOT NULL,
	currency       text        NOT NULL,
	anomaly_id     text        NOT NULL,
	start_time     timestamptz NOT NULL,
	last_anomalous timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, series_key, currency)
);

-- How far the spike evaluator has judged.
CREATE TABLE anomaly.evaluator (
	name         text PRIMARY KEY,
	evaluated_to timestamptz NOT NULL
);
