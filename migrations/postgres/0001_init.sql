-- Waymark's schema. Times are BIGINT milliseconds since the Unix epoch (UTC); dates are
-- ISO-8601 text; ids are text UUIDv7; JSON is text. The same numbers as in SQLite, so the
-- store's code binds and reads the same values on both: i64 for times and counters, bool for
-- flags (SQLite keeps those as 0 and 1, PostgreSQL as BOOLEAN).

-- Key/value settings that must survive restarts (the accelerated clock's anchor).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A merchant's account at a carrier.
CREATE TABLE carrier_accounts (
    id                  TEXT PRIMARY KEY,
    carrier             TEXT NOT NULL,
    name                TEXT NOT NULL,
    credentials         TEXT NOT NULL DEFAULT '{}',
    base_url            TEXT,
    daily_quota         BIGINT CHECK (daily_quota IS NULL OR daily_quota >= 0),
    -- Read as f64: SQLite's REAL is eight bytes, PostgreSQL's REAL four.
    requests_per_second DOUBLE PRECISION
                        CHECK (requests_per_second IS NULL OR requests_per_second > 0),
    created_at          BIGINT NOT NULL,
    UNIQUE (carrier, name)
);

CREATE TABLE shipments (
    id                  TEXT PRIMARY KEY,
    carrier_account_id  TEXT NOT NULL REFERENCES carrier_accounts (id),
    carrier             TEXT NOT NULL,
    tracking_number     TEXT NOT NULL,
    customer_email      TEXT NOT NULL,
    customer_name       TEXT,
    locale              TEXT NOT NULL,
    time_zone           TEXT NOT NULL,
    destination_country TEXT NOT NULL,
    order_reference     TEXT,
    promise_earliest    TEXT,
    promise_latest      TEXT,
    created_at          BIGINT NOT NULL,
    public_token        TEXT NOT NULL UNIQUE,
    muted               BOOLEAN NOT NULL DEFAULT FALSE,
    -- The journey as the latest poll left it.
    status              TEXT NOT NULL DEFAULT 'pending',
    reason              TEXT,
    estimate_earliest   TEXT,
    estimate_latest     TEXT,
    last_event_at       BIGINT,
    active              BOOLEAN NOT NULL DEFAULT TRUE,
    -- Polling: when next, how urgently when the quota is short (0 = most), who holds it.
    next_poll_at        BIGINT,
    poll_priority       BIGINT NOT NULL DEFAULT 3,
    lease_owner         TEXT,
    lease_expires_at    BIGINT,
    poll_failures       BIGINT NOT NULL DEFAULT 0,
    last_error          TEXT,
    last_error_at       BIGINT,
    last_polled_at      BIGINT,
    updated_at          BIGINT NOT NULL,
    UNIQUE (carrier_account_id, tracking_number),
    -- Only active shipments are polled, and every active shipment has a next poll.
    CHECK (active = (next_poll_at IS NOT NULL)),
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);

-- The due query: per account, by next poll time, only over shipments still polled.
CREATE INDEX shipments_due ON shipments (carrier_account_id, next_poll_at)
    WHERE next_poll_at IS NOT NULL;
CREATE INDEX shipments_next_poll ON shipments (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX shipments_tracking_number ON shipments (tracking_number);
-- Leases in flight, by expiry: when the next expired lease can be rescued, without a scan.
CREATE INDEX shipments_leased ON shipments (lease_expires_at) WHERE lease_owner IS NOT NULL;

-- Every scan once: the key is the event's identity (carrier, UTC second, code, location).
CREATE TABLE events (
    shipment_id        TEXT NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    event_key          TEXT NOT NULL,
    occurred_at        BIGINT NOT NULL,
    -- Bound and read as i32.
    utc_offset_seconds INTEGER,
    status             TEXT NOT NULL,
    reason             TEXT,
    raw_code           TEXT NOT NULL,
    raw_text           TEXT NOT NULL,
    location           TEXT,
    recorded_at        BIGINT NOT NULL,
    -- The order the scans arrived in, which breaks ties between scans of the same millisecond
    -- in a timeline (`ORDER BY occurred_at, rowid`). SQLite gives every table this column
    -- without asking; here it has to be declared.
    rowid              BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (shipment_id, event_key)
);

-- Every change of the carrier's estimate, with its reason.
CREATE TABLE estimate_changes (
    id                TEXT PRIMARY KEY,
    shipment_id       TEXT NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    source            TEXT NOT NULL CHECK (source IN ('carrier', 'promise')),
    previous_earliest TEXT,
    previous_latest   TEXT,
    current_earliest  TEXT,
    current_latest    TEXT,
    reason            TEXT NOT NULL,
    recorded_at       BIGINT NOT NULL
);
CREATE INDEX estimate_changes_shipment ON estimate_changes (shipment_id, recorded_at);

-- Failed polls, kept for the merchant: what the carrier said when it made no sense.
CREATE TABLE poll_errors (
    id                 TEXT PRIMARY KEY,
    shipment_id        TEXT NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL,
    detail             TEXT NOT NULL,
    excerpt            TEXT,
    occurred_at        BIGINT NOT NULL
);
CREATE INDEX poll_errors_shipment ON poll_errors (shipment_id, occurred_at);

-- Calls made per account and quota day.
CREATE TABLE quota_usage (
    carrier_account_id TEXT NOT NULL REFERENCES carrier_accounts (id),
    day                TEXT NOT NULL,
    calls              BIGINT NOT NULL,
    PRIMARY KEY (carrier_account_id, day)
);

-- The outbox: messages written in the same transaction as the poll that caused them.
CREATE TABLE notifications (
    id                TEXT PRIMARY KEY,
    shipment_id       TEXT NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    seq               BIGINT NOT NULL,
    trigger           TEXT NOT NULL,
    dedupe_key        TEXT NOT NULL,
    channel           TEXT NOT NULL,
    recipient         TEXT NOT NULL,
    locale            TEXT NOT NULL,
    reason            TEXT NOT NULL,
    facts             TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN
                        ('pending', 'sending', 'sent', 'failed', 'superseded', 'suppressed')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    available_at      BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    message_id        TEXT,
    provider_response TEXT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL,
    sent_at           BIGINT,
    updated_at        BIGINT NOT NULL,
    -- Once per episode, whatever happens.
    UNIQUE (shipment_id, dedupe_key),
    UNIQUE (shipment_id, seq),
    CHECK ((state = 'sending') = (lease_owner IS NOT NULL)),
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL)),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX notifications_due ON notifications (available_at)
    WHERE state IN ('pending', 'sending');
CREATE INDEX notifications_shipment ON notifications (shipment_id, seq);
