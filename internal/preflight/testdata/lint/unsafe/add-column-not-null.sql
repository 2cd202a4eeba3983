-- want add-column-not-null
ALTER TABLE accounts ADD COLUMN plan text NOT NULL;
-- DEFAULT NULL is no default: the existing rows are NULL.
-- want add-column-not-null
ALTER TABLE accounts ADD COLUMN region text NOT NULL DEFAULT NULL;
