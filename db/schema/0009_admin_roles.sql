-- The admin console (docs/console.md): which accounts may use it, the audit
-- log of every change made from it, the sessions every node's console
-- shares (log in once, use any node; a change for every node of a role is
-- sent with the same session), and where each node's console listens.
-- console_role: viewer (looks), operator (changes strategy, FPS, run budget,
-- kills, profiles), admin (also the Python console); NULL: no console access
-- (every player account). Each statement can run again (IF NOT EXISTS).
ALTER TABLE accounts
  ADD COLUMN IF NOT EXISTS console_role ENUM('viewer', 'operator', 'admin') NULL DEFAULT NULL;

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

-- The token itself is never stored: its SHA-256 (a read of this table gives no session).
CREATE TABLE IF NOT EXISTS console_sessions (
  token_hash CHAR(64) NOT NULL PRIMARY KEY,
  account VARCHAR(64) NOT NULL,
  role ENUM('viewer', 'operator', 'admin') NOT NULL,
  csrf VARCHAR(64) NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  last_seen TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY last_seen (last_seen)
) ENGINE=InnoDB CHARACTER SET utf8mb4;

ALTER TABLE cluster_nodes
  ADD COLUMN IF NOT EXISTS console_address VARCHAR(64) NULL DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS console_port SMALLINT UNSIGNED NULL DEFAULT NULL;
