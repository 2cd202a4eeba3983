-- want rename-table
ALTER TABLE customer RENAME TO customers;
