-- When the daily quota is short, due shipments are claimed closest to delivery first: by
-- priority, then by due time. Read as one index range per priority (there are four), so a
-- claim never sorts the whole due set.
CREATE INDEX shipments_due_by_priority
    ON shipments (carrier_account_id, poll_priority, next_poll_at)
    WHERE next_poll_at IS NOT NULL;

-- Messages on the wire, by when their lease runs out: the dispatcher's next wake-up looks at
-- the first one only.
CREATE INDEX notifications_sending ON notifications (lease_expires_at) WHERE state = 'sending';
