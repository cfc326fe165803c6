-- Chat channels, the cluster's nodes and which sol node runs which solar
-- system, and the live settings a running node watches.
CREATE TABLE IF NOT EXISTS chat_channels (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL UNIQUE,
  owner_id BIGINT UNSIGNED NULL,
  FOREIGN KEY (owner_id) REFERENCES characters (id)
) ENGINE=InnoDB CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS chat_members (
  channel_id BIGINT UNSIGNED NOT NULL,
  character_id BIGINT UNSIGNED NOT NULL,
  muted BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (channel_id, character_id),
  FOREIGN KEY (channel_id) REFERENCES chat_channels (id),
  FOREIGN KEY (character_id) REFERENCES characters (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS cluster_nodes (
  id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  role VARCHAR(16) NOT NULL,
  address VARCHAR(255) NOT NULL,
  started_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  heartbeat_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS system_assignments (
  system_id INT UNSIGNED PRIMARY KEY,
  node_id INT UNSIGNED NOT NULL,
  FOREIGN KEY (system_id) REFERENCES solar_systems (id),
  FOREIGN KEY (node_id) REFERENCES cluster_nodes (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS settings (
  name VARCHAR(64) PRIMARY KEY,
  value VARCHAR(255) NOT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB CHARACTER SET utf8mb4;
