-- Merchants become tenants: each owns its carrier accounts (and through them its shipments) and
-- its API keys. Everything registered before belongs to the `default` merchant, so a single shop
-- keeps working as it did.
--
-- Carrier account names become unique per merchant. SQLite has to rebuild the table for that;
-- PostgreSQL changes it in place, so the rows keep their ids and every reference to an account
-- still resolves, checked by PostgreSQL as the migration runs.

CREATE TABLE merchants (
    id         TEXT PRIMARY KEY,
    -- The handle in the CLI and in logs: lowercase letters, digits and dashes.
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    -- Notification settings and branding (JSON); what is missing comes from the configuration.
    settings   TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
INSERT INTO merchants (id, slug, name, created_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'default', 'Default',
        FLOOR(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT);

-- The accounts there are become the default merchant's; a new one names its merchant (the
-- column has no default, as in SQLite's rebuilt table). Credentials are sealed under the master
-- key once Waymark has started with one (see `src/vault.rs`); the column stays as it is.
ALTER TABLE carrier_accounts ADD COLUMN merchant_id TEXT NOT NULL
    DEFAULT '00000000-0000-7000-8000-000000000001' REFERENCES merchants (id);
ALTER TABLE carrier_accounts ALTER COLUMN merchant_id DROP DEFAULT;
-- `UNIQUE (carrier, name)` of 0001_init.sql, by the name PostgreSQL gave it.
ALTER TABLE carrier_accounts DROP CONSTRAINT carrier_accounts_carrier_name_key;
ALTER TABLE carrier_accounts ADD UNIQUE (merchant_id, carrier, name);

-- A shipment's merchant is its carrier account's, written with the row (registrations take it
-- from the account) so that every merchant-scoped read is one index range.
ALTER TABLE shipments ADD COLUMN merchant_id TEXT NOT NULL
    DEFAULT '00000000-0000-7000-8000-000000000001';
-- A merchant's shipments newest first (ids are time-ordered UUIDv7): the API's list and its
-- cursor.
CREATE INDEX shipments_merchant ON shipments (merchant_id, id);
-- A merchant's shipments by order reference, the ERP's lookup.
CREATE INDEX shipments_order_reference ON shipments (merchant_id, order_reference)
    WHERE order_reference IS NOT NULL;

-- The keys a merchant's systems call the API with. Only a hash of each key is kept; its first
-- characters are shown so a merchant can tell keys apart.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    merchant_id  TEXT NOT NULL REFERENCES merchants (id),
    name         TEXT NOT NULL,
    -- The key's visible start, `wm_` and eight characters.
    prefix       TEXT NOT NULL,
    -- SHA-256 of the whole key, hex.
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id, created_at);

-- Requests a merchant sent with an `Idempotency-Key`: the same key with the same request gets
-- the first answer again, with another request a refusal. Kept a day.
CREATE TABLE idempotency_keys (
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    key             TEXT NOT NULL,
    -- SHA-256 of the method, the path and the body.
    request_hash    TEXT NOT NULL,
    -- An HTTP status, bound and read as i64.
    response_status BIGINT NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
