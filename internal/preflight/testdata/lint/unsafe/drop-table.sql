-- want drop-table
DROP TABLE IF EXISTS sessions;
