-- PENDING: moves to db/schema/ as soon as 0008 and 0009 are there (db_migrate refuses a gap in
-- the versions; 0010 is the console's number). Until then test_console_db.py applies it by hand.
-- The admin console (docs/console.md): which accounts may use it, and the
-- audit log of every change made from it. console_role: viewer (looks),
-- operator (changes strategy, FPS, run budget, kills, profiles), admin (also
-- the Python console); NULL: no console access (every player account).
ALTER TABLE accounts
  ADD COLUMN console_role ENUM('viewer', 'operator', 'admin') NULL DEFAULT NULL;

CREATE TABLE IF NOT EXISTS console_audit (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  account VARCHAR(64) NOT NULL,
  peer VARCHAR(64) NOT NULL,
  node VARCHAR(64) NOT NULL,
  action VARCHAR(32) NOT NULL,
  detail TEXT NOT NULL,
  outcome VARCHAR(255) NOT NULL,
  KEY at (at)
) ENGINE=InnoDB CHARACTER SET utf8mb4;
