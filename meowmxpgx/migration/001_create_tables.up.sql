-- The tables of meowmx 0.2 (Python), created when absent and adopted when a
-- Python client created them first. {{id_type}} is the aggregate id column
-- type chosen at creation: TEXT, UUID or CHAR(n).
CREATE TABLE IF NOT EXISTS {{schema}}.es_aggregates (
  id              {{id_type}} PRIMARY KEY,
  version         INTEGER     NOT NULL,
  aggregate_type  TEXT        NOT NULL
);
-- Indexes take the Python client's names, so that its setup's CREATE
-- INDEX IF NOT EXISTS finds them, and are made only when no index of that
-- definition exists, whatever its name (below, after es_events).
CREATE TABLE IF NOT EXISTS {{schema}}.es_events (
  id              BIGSERIAL   PRIMARY KEY,
  transaction_id  XID8        NOT NULL,
  aggregate_id    {{id_type}} NOT NULL,
  version         INTEGER     NOT NULL,
  event_type      TEXT        NOT NULL,
  json_data       JSON        NOT NULL,
  UNIQUE (aggregate_id, version)
);
-- DO blocks take the schema from the setting meowmx.schema (a quoted
-- identifier, set by Migrate), never from text pasted into their body.
DO $meowmx$
DECLARE
  s text := current_setting('meowmx.schema');
BEGIN
  -- A plain, valid, non-unique btree index on exactly these columns, in
  -- this order, with the default operator classes and no predicate.
  IF NOT EXISTS (SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am m ON m.oid = c.relam
      WHERE i.indrelid = (s || '.es_aggregates')::regclass AND m.amname = 'btree' AND i.indisvalid
        AND i.indpred IS NULL AND i.indexprs IS NULL AND NOT i.indisunique
        AND i.indkey::text = (SELECT attnum::text FROM pg_attribute
          WHERE attrelid = (s || '.es_aggregates')::regclass AND attname = 'aggregate_type')) THEN
    EXECUTE 'CREATE INDEX IF NOT EXISTS idx_es_aggregate_aggregate_type ON ' || s || '.es_aggregates (aggregate_type)';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am m ON m.oid = c.relam
      WHERE i.indrelid = (s || '.es_events')::regclass AND m.amname = 'btree' AND i.indisvalid
        AND i.indpred IS NULL AND i.indexprs IS NULL AND NOT i.indisunique
        AND i.indkey::text = (SELECT string_agg(attnum::text, ' ' ORDER BY array_position(ARRAY['transaction_id', 'id'], attname::text))
          FROM pg_attribute WHERE attrelid = (s || '.es_events')::regclass AND attname IN ('transaction_id', 'id'))) THEN
    EXECUTE 'CREATE INDEX IF NOT EXISTS idx_es_event_transaction_id_id ON ' || s || '.es_events (transaction_id, id)';
  END IF;
END $meowmx$;

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
  ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ;
-- Added without a default first: events written before (by the Python
-- client) keep a NULL, their write time unknown, never the migration's.
ALTER TABLE {{schema}}.es_events ALTER COLUMN created_at SET DEFAULT now();
CREATE UNIQUE INDEX IF NOT EXISTS es_events_event_uuid_key
  ON {{schema}}.es_events (event_uuid) WHERE event_uuid IS NOT NULL;
