-- How often each shipment was fetched in its carrier's current day, so a carrier's cap on
-- fetches of one shipment a day (DHL: ten) holds on every path: polls, unknown numbers and
-- failed calls alike.
ALTER TABLE shipments ADD COLUMN fetch_day TEXT;
ALTER TABLE shipments ADD COLUMN fetches_on_day BIGINT NOT NULL DEFAULT 0
    CHECK (fetches_on_day >= 0);
