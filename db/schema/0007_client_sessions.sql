-- One session per account across the cluster (docs/sessions.md): the row of
-- an account names its live session and the proxy holding it. A login
-- replaces the row (the account's key makes that atomic); the proxy that held
-- the old session sees at its next check that the row names another session,
-- and ends the old one. A proxy that stops deletes its rows; a proxy marked
-- gone leaves rows naming a gone node, which a login simply replaces.
CREATE TABLE IF NOT EXISTS client_sessions (
  account_id BIGINT UNSIGNED PRIMARY KEY,
  session_id BIGINT UNSIGNED NOT NULL,
  proxy_node_id INT UNSIGNED NOT NULL,
  address VARCHAR(64) NOT NULL,
  started_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY session_id (session_id),
  KEY proxy_node_id (proxy_node_id),
  FOREIGN KEY (account_id) REFERENCES accounts (id),
  FOREIGN KEY (proxy_node_id) REFERENCES cluster_nodes (id)
) ENGINE=InnoDB CHARACTER SET utf8mb4;
