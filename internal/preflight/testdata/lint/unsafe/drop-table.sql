-- want drop-table
DROP TABLE IF EXISTS sessions;
-- want drop-table
DROP VIEW active_users;
-- want drop-table
DROP MATERIALIZED VIEW daily_totals;
