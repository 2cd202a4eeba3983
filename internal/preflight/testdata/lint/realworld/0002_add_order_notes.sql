-- Expand: new nullable column and a concurrent index. Safe while v1 serves.
ALTER TABLE orders ADD COLUMN notes text;
ALTER TABLE orders ADD COLUMN priority smallint NOT NULL DEFAULT 0;
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status) WHERE status <> 'closed';
COMMENT ON COLUMN orders.notes IS 'free text; DROP COLUMN notes later is not a statement';
