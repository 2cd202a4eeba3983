-- A constant (or stable) default is stored once, no rewrite (PostgreSQL 11+).
ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();
ALTER TABLE users ADD COLUMN token uuid;
VACUUM (ANALYZE) users;
ALTER TABLE users ADD COLUMN bucket int DEFAULT CASE WHEN 1 < 2 THEN 1 ELSE 2 END;
ALTER TABLE users ADD COLUMN tag text DEFAULT lower('X' || current_user);
