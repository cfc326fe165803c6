-- Money as exact integers (hundredths of an ISK): no floating point, no rounding.
CREATE TABLE IF NOT EXISTS wallets (
  character_id BIGINT UNSIGNED PRIMARY KEY,
  balance BIGINT NOT NULL DEFAULT 0,
  FOREIGN KEY (character_id) REFERENCES characters (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS market_orders (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  character_id BIGINT UNSIGNED NOT NULL,
  system_id INT UNSIGNED NOT NULL,
  type_id INT UNSIGNED NOT NULL,
  is_buy BOOLEAN NOT NULL,
  price BIGINT NOT NULL,
  quantity BIGINT NOT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  FOREIGN KEY (character_id) REFERENCES characters (id),
  KEY (system_id, type_id, is_buy, price)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS wallet_transactions (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  character_id BIGINT UNSIGNED NOT NULL,
  amount BIGINT NOT NULL,
  balance_after BIGINT NOT NULL,
  reason VARCHAR(64) NOT NULL,
  order_id BIGINT UNSIGNED NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  FOREIGN KEY (character_id) REFERENCES characters (id),
  KEY (character_id, created_at)
) ENGINE=InnoDB CHARACTER SET utf8mb4;
