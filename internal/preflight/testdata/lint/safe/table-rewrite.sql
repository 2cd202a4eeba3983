-- A constant (or stable) default is stored once, no rewrite (PostgreSQL 11+).
ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT now();
ALTER TABLE users ADD COLUMN token uuid;
VACUUM (ANALYZE) users;
