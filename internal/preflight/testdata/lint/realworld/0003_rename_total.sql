-- A typical hand-written migration that breaks the old version twice and
-- locks the orders table while it does.
BEGIN;
-- want rename-column
ALTER TABLE orders RENAME COLUMN total TO amount;
-- want alter-column-type
ALTER TABLE orders
    ALTER COLUMN amount TYPE bigint USING (amount * 100)::bigint;
-- want create-index
CREATE INDEX orders_amount_idx ON orders (amount);
-- want set-not-null
-- want drop-column
ALTER TABLE users ALTER COLUMN name SET NOT NULL, DROP COLUMN created_at;
UPDATE orders SET status = 'closed' WHERE created_at < now() - interval '1 year';
COMMIT;
