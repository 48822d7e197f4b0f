-- A merchant's logo, uploaded through the API and served by Waymark itself: the tracking pages
-- load nothing from anywhere else.
CREATE TABLE merchant_logos (
    merchant_id  TEXT PRIMARY KEY REFERENCES merchants (id),
    content_type TEXT NOT NULL,
    bytes        BYTEA NOT NULL,
    updated_at   BIGINT NOT NULL
);
