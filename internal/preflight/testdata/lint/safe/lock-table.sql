SET lock_timeout = '2s';
UPDATE orders SET status = 'open' WHERE status IS NULL AND id < 10000;
CREATE TABLE import_staging (id int);
TRUNCATE import_staging;
