-- Emails to a merchant's own staff (a delivery change to make with the carrier by hand, ...),
-- written in the same transaction as what caused them and sent, with retries, until the
-- merchant's mail server takes them: a change handed to the merchant is never lost to an SMTP
-- server's bad minute.
CREATE TABLE merchant_emails (
    id          TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    -- The shipment and the delivery change it is about, when it is about one: erasing the
    -- shipment's personal data deletes its emails, whose text names neighbours.
    shipment_id TEXT REFERENCES shipments (id) ON DELETE CASCADE,
    change_id   TEXT,
    -- pending, sent, failed.
    state       TEXT NOT NULL,
    sender      TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    -- When a pending email is next tried; a sender holding it has moved this ahead.
    due_at      BIGINT,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    sent_at     BIGINT
);
CREATE INDEX merchant_emails_due ON merchant_emails (due_at) WHERE state = 'pending';
CREATE INDEX merchant_emails_shipment ON merchant_emails (shipment_id);
