CREATE TABLE scratch (id int);
DROP TABLE scratch;
CREATE VIEW scratch_v AS SELECT 1 AS x;
DROP VIEW scratch_v;
