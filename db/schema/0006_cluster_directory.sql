-- The cluster directory (docs/cluster.md): a row per node incarnation (a
-- restart registers a new row), with its name, where others reach it, which
-- process it is, its heartbeat on the database's clock (microseconds: the
-- timeout may be short), and when and why it was marked gone. `live_name`
-- makes "one live node per name" the database's rule, not the nodes'. The
-- keys serve the reads every heartbeat makes: the live nodes of a role, the
-- live ones that are late (gone rows stay, as history).
-- One ALTER: it applies whole or not at all, so a failed run can run again.
ALTER TABLE cluster_nodes
  ADD COLUMN name VARCHAR(64) NOT NULL DEFAULT '' AFTER id,
  ADD COLUMN port SMALLINT UNSIGNED NOT NULL DEFAULT 0 AFTER address,
  ADD COLUMN host VARCHAR(255) NOT NULL DEFAULT '' AFTER port,
  ADD COLUMN pid INT UNSIGNED NOT NULL DEFAULT 0 AFTER host,
  MODIFY started_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  MODIFY heartbeat_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  ADD COLUMN gone_at TIMESTAMP(6) NULL DEFAULT NULL,
  ADD COLUMN gone_reason VARCHAR(32) NULL DEFAULT NULL,
  ADD COLUMN live_name VARCHAR(64) GENERATED ALWAYS AS (IF(gone_at IS NULL, name, NULL)) STORED,
  ADD UNIQUE KEY live_name (live_name),
  ADD KEY role_gone (role, gone_at),
  ADD KEY gone_heartbeat (gone_at, heartbeat_at);
