-- Merchants become tenants: each owns its carrier accounts (and through them its shipments) and
-- its API keys. Everything registered before belongs to the `default` merchant, so a single shop
-- keeps working as it did.
--
-- Carrier account names become unique per merchant, which in SQLite means rebuilding the table
-- (SQLite's twelve-step procedure): migrations run with foreign keys off, and the store checks
-- every reference before it turns them back on. The rows keep their ids, so every reference to
-- an account still resolves.

CREATE TABLE merchants (
    id         TEXT PRIMARY KEY,
    -- The handle in the CLI and in logs: lowercase letters, digits and dashes.
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    -- Notification settings and branding (JSON); what is missing comes from the configuration.
    settings   TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
INSERT INTO merchants (id, slug, name, created_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'default', 'Default',
        CAST(unixepoch('subsec') * 1000 AS INTEGER));

CREATE TABLE carrier_accounts_by_merchant (
    id                  TEXT PRIMARY KEY,
    merchant_id         TEXT NOT NULL REFERENCES merchants (id),
    carrier             TEXT NOT NULL,
    name                TEXT NOT NULL,
    -- Sealed under the master key once Waymark has started with one (see `src/vault.rs`).
    credentials         TEXT NOT NULL DEFAULT '{}',
    base_url            TEXT,
    daily_quota         INTEGER CHECK (daily_quota IS NULL OR daily_quota >= 0),
    requests_per_second REAL CHECK (requests_per_second IS NULL OR requests_per_second > 0),
    created_at          INTEGER NOT NULL,
    UNIQUE (merchant_id, carrier, name)
);
INSERT INTO carrier_accounts_by_merchant
    (id, merchant_id, carrier, name, credentials, base_url, daily_quota, requests_per_second,
     created_at)
SELECT id, '00000000-0000-7000-8000-000000000001', carrier, name, credentials, base_url,
       daily_quota, requests_per_second, created_at
FROM carrier_accounts;
DROP TABLE carrier_accounts;
ALTER TABLE carrier_accounts_by_merchant RENAME TO carrier_accounts;

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
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_merchant ON api_keys (merchant_id, created_at);

-- Requests a merchant sent with an `Idempotency-Key`: the same key with the same request gets
-- the first answer again, with another request a refusal. Kept a day.
CREATE TABLE idempotency_keys (
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    key             TEXT NOT NULL,
    -- SHA-256 of the method, the path and the body.
    request_hash    TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
