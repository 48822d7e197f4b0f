-- Each carrier account's requests-per-second limit, shared by every replica polling it: the
-- next free slot (a generic cell rate: real-time milliseconds). A caller moves it on by one
-- interval and waits until the slot it took; a burst may run ahead of now by the burst window.
CREATE TABLE carrier_rate_slots (
    carrier_account_id TEXT PRIMARY KEY REFERENCES carrier_accounts (id) ON DELETE CASCADE,
    next_slot_at       INTEGER NOT NULL
);
