-- want table-rewrite
ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();
-- want table-rewrite
ALTER TABLE users ADD COLUMN seq bigserial;
-- want table-rewrite
VACUUM FULL users;
-- want table-rewrite
ALTER TABLE users SET TABLESPACE fast_disks;
-- want table-rewrite
ALTER TABLE users ADD COLUMN bucket int DEFAULT CASE WHEN random() < 0.5 THEN 1 ELSE 2 END;
-- want table-rewrite
ALTER TABLE users ADD COLUMN tag text DEFAULT lower(md5(random()::text) || 'x');
