-- The destination's postal code, as its country writes it (`94105`, `V6B 1A1`): where the country
-- spans several time zones it is how the customer's zone was found. Shipments registered before
-- it was asked for have none.
ALTER TABLE shipments ADD COLUMN destination_postal_code TEXT;
