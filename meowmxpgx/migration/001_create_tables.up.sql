-- The tables of meowmx 0.2 (Python), created when absent and adopted when a
-- Python client created them first. {{id_type}} is the aggregate id column
-- type chosen at creation: TEXT, UUID or CHAR(n).
CREATE TABLE IF NOT EXISTS {{schema}}.es_aggregates (
  id              {{id_type}} PRIMARY KEY,
  version         INTEGER     NOT NULL,
  aggregate_type  TEXT        NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_es_aggregates_aggregate_type
  ON {{schema}}.es_aggregates (aggregate_type);

CREATE TABLE IF NOT EXISTS {{schema}}.es_events (
  id              BIGSERIAL   PRIMARY KEY,
  transaction_id  XID8        NOT NULL,
  aggregate_id    {{id_type}} NOT NULL,
  version         INTEGER     NOT NULL,
  event_type      TEXT        NOT NULL,
  json_data       JSON        NOT NULL,
  UNIQUE (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS idx_es_events_transaction_id_id
  ON {{schema}}.es_events (transaction_id, id);

CREATE TABLE IF NOT EXISTS {{schema}}.es_aggregate_snapshots (
  aggregate_id  {{id_type}} NOT NULL,
  version       INTEGER     NOT NULL,
  json_data     JSON        NOT NULL,
  PRIMARY KEY (aggregate_id, version)
);

CREATE TABLE IF NOT EXISTS {{schema}}.es_event_subscriptions (
  subscription_name    TEXT    PRIMARY KEY,
  last_transaction_id  XID8    NOT NULL,
  last_event_id        BIGINT  NOT NULL
);

-- Go additions: nullable or defaulted, so the Python client keeps working.
ALTER TABLE {{schema}}.es_events
  ADD COLUMN IF NOT EXISTS metadata   JSON,
  ADD COLUMN IF NOT EXISTS event_uuid UUID,
  ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE UNIQUE INDEX IF NOT EXISTS es_events_event_uuid_key
  ON {{schema}}.es_events (event_uuid) WHERE event_uuid IS NOT NULL;
