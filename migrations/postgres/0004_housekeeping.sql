-- Periodic jobs on cron schedules: when each is due next, and who runs it now, so that one
-- worker at a time runs it per database and another takes over when that one dies.
CREATE TABLE jobs (
    name             TEXT PRIMARY KEY,
    next_run_at      BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    last_started_at  BIGINT,
    last_finished_at BIGINT,
    last_outcome     TEXT,
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
);

-- What Waymark tells the merchant about a shipment beside the customer's messages (it gave up
-- on a parcel the carrier never found, or that stopped moving), for the merchant to list.
CREATE TABLE merchant_notices (
    id          TEXT PRIMARY KEY,
    shipment_id TEXT NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX merchant_notices_created ON merchant_notices (created_at);

-- Expiry finds polled shipments by their last sign of life without a scan of the table.
CREATE INDEX shipments_last_sign_of_life ON shipments ((COALESCE(last_event_at, created_at)))
    WHERE next_poll_at IS NOT NULL;
-- Pruning finds old poll errors without a scan of the table.
CREATE INDEX poll_errors_occurred ON poll_errors (occurred_at);
