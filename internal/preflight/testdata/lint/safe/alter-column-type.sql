ALTER TABLE events ADD COLUMN payload_json jsonb;
-- A new enum value: the old version never writes it (PostgreSQL 12+
-- allows it in a transaction too).
ALTER TYPE order_status ADD VALUE 'refunded';
