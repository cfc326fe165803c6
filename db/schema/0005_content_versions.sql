-- Content tables a running node watches (db/python/live_settings.py): each
-- has a version in content_versions that triggers bump on every inserted,
-- updated or deleted row, committed with the change itself. A node polls
-- this small table instead of scanning the content (CHECKSUM TABLE would
-- read every row at every poll), and a change made with plain SQL counts as
-- any other. A trigger's body is one statement: no BEGIN...END, so each
-- statement below ends at its line's `;` as db_migrate splits them.
CREATE TABLE IF NOT EXISTS content_versions (
  table_name VARCHAR(64) PRIMARY KEY,
  version BIGINT UNSIGNED NOT NULL DEFAULT 0
) ENGINE=InnoDB CHARACTER SET utf8mb4;

INSERT IGNORE INTO content_versions (table_name) VALUES ('solar_systems'), ('chat_channels');

CREATE TRIGGER IF NOT EXISTS solar_systems_version_insert AFTER INSERT ON solar_systems FOR EACH ROW UPDATE content_versions SET version = version + 1 WHERE table_name = 'solar_systems';
CREATE TRIGGER IF NOT EXISTS solar_systems_version_update AFTER UPDATE ON solar_systems FOR EACH ROW UPDATE content_versions SET version = version + 1 WHERE table_name = 'solar_systems';
CREATE TRIGGER IF NOT EXISTS solar_systems_version_delete AFTER DELETE ON solar_systems FOR EACH ROW UPDATE content_versions SET version = version + 1 WHERE table_name = 'solar_systems';
CREATE TRIGGER IF NOT EXISTS chat_channels_version_insert AFTER INSERT ON chat_channels FOR EACH ROW UPDATE content_versions SET version = version + 1 WHERE table_name = 'chat_channels';
CREATE TRIGGER IF NOT EXISTS chat_channels_version_update AFTER UPDATE ON chat_channels FOR EACH ROW UPDATE content_versions SET version = version + 1 WHERE table_name = 'chat_channels';
CREATE TRIGGER IF NOT EXISTS chat_channels_version_delete AFTER DELETE ON chat_channels FOR EACH ROW UPDATE content_versions SET version = version + 1 WHERE table_name = 'chat_channels';
