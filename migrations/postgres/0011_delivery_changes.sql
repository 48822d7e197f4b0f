-- What the merchant said about an order when registering it: its value (for the delivery-change
-- policy and risk rules) and whether the carrier needs a signature (no redirection then).
ALTER TABLE shipments ADD COLUMN order_value_minor BIGINT;
ALTER TABLE shipments ADD COLUMN order_currency TEXT;
ALTER TABLE shipments ADD COLUMN signature_required BOOLEAN NOT NULL DEFAULT FALSE;

-- A customer's request to change a delivery, from the moment a code was sent until it was
-- carried out, handed to the merchant, rejected, refused or given up. The one-time code is kept
-- only as an HMAC of it.
CREATE TABLE delivery_changes (
    id              TEXT PRIMARY KEY,
    shipment_id     TEXT NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    merchant_id     TEXT NOT NULL REFERENCES merchants (id),
    -- another_day, neighbour, pickup_point, safe_place; the details as JSON.
    kind            TEXT NOT NULL,
    details         TEXT NOT NULL,
    state           TEXT NOT NULL,
    code_hash       TEXT,
    code_sent_to    TEXT,
    code_expires_at BIGINT NOT NULL,
    wrong_codes     BIGINT NOT NULL DEFAULT 0,
    -- A SHA-256 of the client's address, for the audit trail without keeping the address.
    client_hash     TEXT,
    -- Why the merchant has to approve it, when it has to.
    approval_reason TEXT,
    -- The merchant's or Waymark's word on a rejection or refusal.
    outcome_note    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX delivery_changes_shipment ON delivery_changes (shipment_id, created_at);
CREATE INDEX delivery_changes_merchant ON delivery_changes (merchant_id, state, created_at);

-- Every step of a request, for the audit trail: what happened, when, and how it was verified.
CREATE TABLE delivery_change_events (
    change_id TEXT NOT NULL REFERENCES delivery_changes (id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    state     TEXT NOT NULL,
    note      TEXT NOT NULL,
    PRIMARY KEY (change_id, seq)
);
