-- want table-rewrite
ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();
-- want table-rewrite
ALTER TABLE users ADD COLUMN seq bigserial;
-- want table-rewrite
VACUUM FULL users;
-- want table-rewrite
ALTER TABLE users SET TABLESPACE fast_disks;
