-- The contract step, a release after the code stopped reading it.
-- cutover:allow drop-column
ALTER TABLE users DROP COLUMN nickname;
-- A column of a table this migration creates is nobody's yet.
CREATE TABLE drafts (id bigint PRIMARY KEY, body text, tmp int);
ALTER TABLE drafts DROP COLUMN tmp;
-- "drop column" in a string or a comment is not a statement:
INSERT INTO audit (note) VALUES ('ALTER TABLE users DROP COLUMN email');
