-- Initial schema, as a migration tool would write it: everything is new,
-- so nothing here can break a running version.
BEGIN;

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    total       numeric(12, 2) NOT NULL CHECK (total >= 0),
    status      text NOT NULL DEFAULT 'open',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX orders_user_id_idx ON orders (user_id);
CREATE UNIQUE INDEX users_lower_email_idx ON users (lower(email));

CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- DROP TABLE inside a function body is not run by the migration
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMIT;
