/* Contract step of an earlier expand: accepted on purpose for this
   statement only. */
ALTER TABLE users DROP COLUMN legacy_flags; -- cutover:allow drop-column
-- want drop-table
DROP TABLE old_sessions, old_tokens;
