-- The market (docs/market.md): regions and their solar systems, orders per
-- region, the trades, and the idempotency rows that make a retried request
-- return its first answer instead of trading twice. Money stays exact
-- integers (hundredths of an ISK), as in 0003.

CREATE TABLE IF NOT EXISTS regions (
  id INT UNSIGNED PRIMARY KEY,
  name VARCHAR(64) NOT NULL UNIQUE
) ENGINE=InnoDB CHARACTER SET utf8mb4;

-- NULL: a system in no region has no market.
ALTER TABLE solar_systems
  ADD COLUMN IF NOT EXISTS region_id INT UNSIGNED NULL,
  ADD CONSTRAINT solar_systems_region FOREIGN KEY IF NOT EXISTS (region_id) REFERENCES regions (id);

-- A wallet never goes below zero, whatever code writes it: the server refuses
-- the statement (4025) and the transaction rolls back.
ALTER TABLE wallets ADD CONSTRAINT IF NOT EXISTS wallet_not_negative CHECK (balance >= 0);

-- One row per request a character made, keyed by the id the client chose. The
-- market inserts it first in the request's transaction: a retry, even one that
-- raced the first, meets the key and gets `answer` (JSON text, never a
-- pickle) instead of doing the work again. `request` (JSON of the call) lets a
-- reuse of the id for another call be refused. VARBINARY: ids compare byte for
-- byte (no case folding, no trailing-space padding).
CREATE TABLE IF NOT EXISTS market_requests (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  character_id BIGINT UNSIGNED NOT NULL,
  request_id VARBINARY(64) NOT NULL,
  request VARCHAR(255) NOT NULL,
  answer TEXT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY character_request (character_id, request_id),
  FOREIGN KEY (character_id) REFERENCES characters (id)
) ENGINE=InnoDB CHARACTER SET utf8mb4;

-- Orders rest per region. `quantity` is what is left, `quantity_entered` what
-- was asked; `escrow` is the money a buy order holds (price x quantity left),
-- taken from the wallet when it rested. A filled or cancelled order is
-- deleted: the trades and wallet transactions keep its story. The book keys
-- serve matching in price-time priority (time: the order id): the lowest ask
-- first, the highest bid first, the oldest first at one price.
ALTER TABLE market_orders
  ADD COLUMN IF NOT EXISTS region_id INT UNSIGNED NOT NULL AFTER character_id,
  ADD COLUMN IF NOT EXISTS quantity_entered BIGINT NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS escrow BIGINT NOT NULL DEFAULT 0,
  DROP KEY IF EXISTS system_id,
  ADD KEY IF NOT EXISTS asks (region_id, type_id, is_buy, price, id),
  ADD KEY IF NOT EXISTS bids (region_id, type_id, is_buy, price DESC, id),
  ADD KEY IF NOT EXISTS owner_orders (character_id, id),
  ADD CONSTRAINT market_orders_region FOREIGN KEY IF NOT EXISTS (region_id) REFERENCES regions (id);

-- One row per book, (region, type): every place and cancel locks its book's
-- row first, so one book's requests run one after the other, as one matching
-- engine per instrument does. Without it, two placers' range locks on the
-- book's index and their inserts of new orders into it deadlock at once.
CREATE TABLE IF NOT EXISTS market_books (
  region_id INT UNSIGNED NOT NULL,
  type_id INT UNSIGNED NOT NULL,
  PRIMARY KEY (region_id, type_id),
  FOREIGN KEY (region_id) REFERENCES regions (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS market_trades (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  market_request_id BIGINT UNSIGNED NOT NULL,  -- the request whose order took the resting one
  region_id INT UNSIGNED NOT NULL,
  type_id INT UNSIGNED NOT NULL,
  price BIGINT NOT NULL,
  quantity BIGINT NOT NULL,
  resting_order_id BIGINT UNSIGNED NOT NULL,  -- the order taken (deleted once filled: no foreign key)
  taker_is_buy BOOLEAN NOT NULL,                -- the request's side
  buyer_id BIGINT UNSIGNED NOT NULL,
  seller_id BIGINT UNSIGNED NOT NULL,
  created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY (market_request_id),
  KEY (region_id, type_id, id),
  FOREIGN KEY (market_request_id) REFERENCES market_requests (id),
  FOREIGN KEY (buyer_id) REFERENCES characters (id),
  FOREIGN KEY (seller_id) REFERENCES characters (id)
) ENGINE=InnoDB;

-- Which market request moved the money: the retry checks count on it.
ALTER TABLE wallet_transactions
  ADD COLUMN IF NOT EXISTS market_request_id BIGINT UNSIGNED NULL,
  ADD KEY IF NOT EXISTS market_request (market_request_id),
  ADD CONSTRAINT wallet_transactions_market_request FOREIGN KEY IF NOT EXISTS (market_request_id)
    REFERENCES market_requests (id);
