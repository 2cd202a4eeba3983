-- expand: the new column next to the old one
ALTER TABLE orders ADD COLUMN amount_cents bigint;
UPDATE orders SET amount_cents = total WHERE amount_cents IS NULL;
