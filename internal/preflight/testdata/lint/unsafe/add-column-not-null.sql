-- want add-column-not-null
ALTER TABLE accounts ADD COLUMN plan text NOT NULL;
