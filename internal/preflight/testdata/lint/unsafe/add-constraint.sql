-- want add-constraint
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
-- want add-constraint
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total > 0);
-- want add-constraint
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
