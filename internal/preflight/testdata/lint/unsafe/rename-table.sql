-- want rename-table
ALTER TABLE customer RENAME TO customers;
-- want rename-table
ALTER TABLE invoices SET SCHEMA archive;
-- want rename-table
ALTER VIEW active_users RENAME TO current_users;
