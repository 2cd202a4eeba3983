-- want rename-table
ALTER TABLE customer RENAME TO customers;
-- want rename-table
ALTER TABLE invoices SET SCHEMA archive;
