-- A merchant's own versions of the message templates (`email/de/delivered.html`), used instead
-- of the bundled ones for its customers only.
CREATE TABLE merchant_templates (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, name)
);
