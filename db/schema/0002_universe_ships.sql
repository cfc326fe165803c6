-- The universe: solar systems, the gates between them, ships and where they are.
CREATE TABLE IF NOT EXISTS solar_systems (
  id INT UNSIGNED PRIMARY KEY,
  name VARCHAR(64) NOT NULL UNIQUE,
  security DECIMAL(3,2) NOT NULL,
  x DOUBLE NOT NULL, y DOUBLE NOT NULL, z DOUBLE NOT NULL
) ENGINE=InnoDB CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS gates (
  id INT UNSIGNED PRIMARY KEY,
  system_id INT UNSIGNED NOT NULL,
  destination_gate_id INT UNSIGNED NULL,
  x DOUBLE NOT NULL, y DOUBLE NOT NULL, z DOUBLE NOT NULL,
  FOREIGN KEY (system_id) REFERENCES solar_systems (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS ships (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  owner_id BIGINT UNSIGNED NOT NULL,
  type_id INT UNSIGNED NOT NULL,
  system_id INT UNSIGNED NOT NULL,
  x DOUBLE NOT NULL, y DOUBLE NOT NULL, z DOUBLE NOT NULL,
  FOREIGN KEY (owner_id) REFERENCES characters (id),
  FOREIGN KEY (system_id) REFERENCES solar_systems (id),
  KEY (system_id)
) ENGINE=InnoDB;
