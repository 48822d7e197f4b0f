-- Each carrier account's OAuth2 access token, shared by every replica polling the account, so
-- the carrier sees one token request per account rather than one per replica. The token is
-- sealed under the master key like the account's credentials; times are real-time
-- milliseconds. While a replica fetches a new token it holds `fetch_owner` until
-- `fetch_until`; the others wait for its token instead of asking the carrier too.
CREATE TABLE carrier_tokens (
    carrier_account_id TEXT PRIMARY KEY REFERENCES carrier_accounts (id) ON DELETE CASCADE,
    token_id           TEXT,
    token              TEXT,
    expires_at         INTEGER,
    fetch_owner        TEXT,
    fetch_until        INTEGER
);
