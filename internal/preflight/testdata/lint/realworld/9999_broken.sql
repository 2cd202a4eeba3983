ALTER TABLE orders ADD COLUMN ok text;
-- want parse-error
ALTER TABLE orders ADD COLUMN broken text NOT NULL DEFAULT;
