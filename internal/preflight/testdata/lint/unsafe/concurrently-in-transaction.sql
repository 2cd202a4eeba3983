BEGIN;
ALTER TABLE orders ADD COLUMN note text;
-- want concurrently-in-transaction
CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);
-- want concurrently-in-transaction
DROP INDEX CONCURRENTLY orders_old_idx;
-- want concurrently-in-transaction
REINDEX INDEX CONCURRENTLY orders_created_at_idx;
COMMIT;
