-- The tables of meowmx on SQLite, with the names and columns of the
-- PostgreSQL tables so that the same tools read both. Differences:
-- STRICT tables with SQLite types (TEXT for ids, JSON and times; BLOB for
-- event UUIDs), and es_events.transaction_id is always 0: one writer
-- commits at a time, so the event id alone follows commit order.
CREATE TABLE IF NOT EXISTS es_aggregates (
  id              TEXT    NOT NULL PRIMARY KEY,
  version         INTEGER NOT NULL,
  aggregate_type  TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_es_aggregates_aggregate_type
  ON es_aggregates (aggregate_type);

-- AUTOINCREMENT: an id is never handed out twice, even after the newest
-- event is deleted, so a reader's position never points before a newer
-- event.
CREATE TABLE IF NOT EXISTS es_events (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  transaction_id  INTEGER NOT NULL DEFAULT 0,
  aggregate_id    TEXT    NOT NULL,
  version         INTEGER NOT NULL,
  event_type      TEXT    NOT NULL,
  json_data       TEXT    NOT NULL,
  metadata        TEXT,
  event_uuid      BLOB    UNIQUE,
  created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (aggregate_id, version)
) STRICT;
-- No index on (transaction_id, id) as on PostgreSQL: transaction_id is
-- always 0, and readers page by id, the rowid.

-- aggregate_type, snapshot_version and state_shape say what a snapshot
-- holds (see the PostgreSQL migration 003_snapshots).
CREATE TABLE IF NOT EXISTS es_aggregate_snapshots (
  aggregate_id      TEXT    NOT NULL,
  version           INTEGER NOT NULL,
  json_data         TEXT    NOT NULL,
  aggregate_type    TEXT,
  snapshot_version  INTEGER,
  state_shape       TEXT,
  PRIMARY KEY (aggregate_id, version)
) STRICT, WITHOUT ROWID;

-- aggregate_types and event_types: the filter a subscription was last run
-- with (JSON arrays, NULL for none), so that its lag can be counted.
CREATE TABLE IF NOT EXISTS es_event_subscriptions (
  subscription_name    TEXT    NOT NULL PRIMARY KEY,
  last_transaction_id  INTEGER NOT NULL,
  last_event_id        INTEGER NOT NULL,
  aggregate_types      TEXT,
  event_types          TEXT
) STRICT, WITHOUT ROWID;

-- Events a subscription's handler failed on (or that wait behind such an
-- event of the same stream), kept until replayed.
CREATE TABLE IF NOT EXISTS es_parked_events (
  subscription_name  TEXT    NOT NULL
    REFERENCES es_event_subscriptions (subscription_name) ON DELETE CASCADE,
  transaction_id     INTEGER NOT NULL,
  event_id           INTEGER NOT NULL,
  aggregate_id       TEXT    NOT NULL,
  error              TEXT    NOT NULL,
  attempts           INTEGER NOT NULL,
  parked_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  replay             INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (subscription_name, transaction_id, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_es_parked_events_aggregate
  ON es_parked_events (subscription_name, aggregate_id);
