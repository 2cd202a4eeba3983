-- want rename-column
ALTER TABLE orders RENAME COLUMN total TO amount_cents;
