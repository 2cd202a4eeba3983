ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;
ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
-- PostgreSQL 12+: a validated CHECK (col IS NOT NULL) lets SET NOT NULL
-- skip the scan, and the check already refuses what NOT NULL would.
ALTER TABLE accounts ADD CONSTRAINT accounts_plan_not_null CHECK (plan IS NOT NULL) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT accounts_plan_not_null;
ALTER TABLE accounts ALTER COLUMN plan SET NOT NULL;
