-- v2 no longer reads users.nickname
-- want drop-column
ALTER TABLE users DROP COLUMN nickname;
