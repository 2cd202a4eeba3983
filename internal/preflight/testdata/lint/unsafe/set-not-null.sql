-- want set-not-null
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
-- A CHECK on another column does not spare the scan.
ALTER TABLE users ADD CONSTRAINT users_name_not_null CHECK (name IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_name_not_null;
-- want set-not-null
ALTER TABLE users ALTER COLUMN phone SET NOT NULL;
-- A check added NOT VALID and never validated does not either.
ALTER TABLE users ADD CONSTRAINT users_city_not_null CHECK (city IS NOT NULL) NOT VALID;
-- want set-not-null
ALTER TABLE users ALTER COLUMN city SET NOT NULL;
