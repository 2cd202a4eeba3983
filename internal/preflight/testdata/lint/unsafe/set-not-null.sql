-- want set-not-null
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
