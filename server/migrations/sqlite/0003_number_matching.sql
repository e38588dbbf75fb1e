-- Number matching: the two-digit number shown on the terminal that the user
-- must type on the device before an approval counts (clients that opt in).
ALTER TABLE ciba_requests ADD COLUMN number_match TEXT;
