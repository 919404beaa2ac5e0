-- Tenants and their API keys. A key's secret is never stored: only the
-- SHA-256 of it, which is enough for secrets of 160 random bits or more.

CREATE TABLE auth.tenants (
    tenant_id   text PRIMARY KEY
        CHECK (tenant_id ~ '^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$'),
    name        text NOT NULL,
    operator    boolean NOT NULL DEFAULT false,
    create_time timestamptz NOT NULL DEFAULT now()
);

-- key_id is unique across tenants because it is how a presented key is
-- found before its tenant is known.
CREATE TABLE auth.api_keys (
    key_id      text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES auth.tenants (tenant_id),
    name        text NOT NULL,
    scopes      text[] NOT NULL
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']),
    prefix      text NOT NULL,
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    create_time timestamptz NOT NULL DEFAULT now(),
    revoke_time timestamptz
);

CREATE INDEX api_keys_by_tenant ON auth.api_keys (tenant_id, create_time, key_id);
