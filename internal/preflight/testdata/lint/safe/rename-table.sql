CREATE VIEW customers AS SELECT * FROM customer;
