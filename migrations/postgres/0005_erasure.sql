-- When a shipment's personal data was erased (the customer's address, name and postal code, and
-- what carriers said about who took the parcel); what is left is anonymous delivery statistics.
ALTER TABLE shipments ADD COLUMN erased_at BIGINT;
-- The retention job finds finished shipments not yet erased without a scan of the table.
CREATE INDEX shipments_finished_unerased ON shipments (updated_at)
    WHERE next_poll_at IS NULL AND erased_at IS NULL;
