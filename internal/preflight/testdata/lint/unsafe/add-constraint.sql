-- want add-constraint
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
-- want add-constraint
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);
-- want add-constraint
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
-- NOT VALID, then VALIDATE in the same transaction: the ADD's lock is
-- held through the whole validating scan.
BEGIN;
ALTER TABLE orders ADD CONSTRAINT orders_qty_positive CHECK (qty > 0) NOT VALID;
-- want add-constraint
ALTER TABLE orders VALIDATE CONSTRAINT orders_qty_positive;
COMMIT;
