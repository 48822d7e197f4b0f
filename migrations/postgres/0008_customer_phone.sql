-- The customer's phone number for text messages, E.164 (`+4915123456789`), as checked at
-- registration against the destination country's numbering plan. Erased with the rest of the
-- customer's personal data.
ALTER TABLE shipments ADD COLUMN customer_phone TEXT;
