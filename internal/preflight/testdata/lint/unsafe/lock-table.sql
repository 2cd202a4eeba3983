BEGIN;
-- want lock-table
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;
UPDATE orders SET status = 'open' WHERE status IS NULL;
COMMIT;
-- want lock-table
TRUNCATE audit_log;
