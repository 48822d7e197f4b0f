-- Customers who asked a merchant for no more messages at all, per channel. The address is kept
-- only as a SHA-256 of it (lower case), so the opt-out outlives the erasure of their data
-- without keeping the address itself.
CREATE TABLE suppressions (
    merchant_id    TEXT NOT NULL REFERENCES merchants (id),
    channel        TEXT NOT NULL,
    recipient_hash TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, channel, recipient_hash)
);
