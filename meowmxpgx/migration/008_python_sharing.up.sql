-- Sharing one database with the Python meowmx 0.2 client all the way.
--
-- 1. Snapshots live in es_aggregate_snapshot (singular), the table that
-- the Python client's PostgreSQL setup creates (CREATE TABLE IF NOT
-- EXISTS: it keeps a table that exists, whatever its id type). Go's
-- es_aggregate_snapshots (003) is renamed to it; when the Python client
-- created its own first, Go's columns are added to that one and Go's
-- snapshots move into it (a snapshot that both hold at one version keeps
-- the Python row: a snapshot is a cache, a lost one costs a longer load).
DO $meowmx$
DECLARE
  s text := current_setting('meowmx.schema'); -- quoted (see 001)
BEGIN
  IF to_regclass(s || '.es_aggregate_snapshots') IS NULL THEN
    NULL; -- nothing of Go's to move
  ELSIF to_regclass(s || '.es_aggregate_snapshot') IS NULL THEN
    EXECUTE 'ALTER TABLE ' || s || '.es_aggregate_snapshots RENAME TO es_aggregate_snapshot';
  ELSE
    EXECUTE 'ALTER TABLE ' || s || '.es_aggregate_snapshot
      ADD COLUMN IF NOT EXISTS aggregate_type   TEXT,
      ADD COLUMN IF NOT EXISTS snapshot_version INTEGER,
      ADD COLUMN IF NOT EXISTS state_shape      TEXT';
    EXECUTE 'INSERT INTO ' || s || '.es_aggregate_snapshot
        (aggregate_id, version, json_data, aggregate_type, snapshot_version, state_shape)
      SELECT g.aggregate_id, g.version, g.json_data, g.aggregate_type, g.snapshot_version, g.state_shape
      FROM ' || s || '.es_aggregate_snapshots g
      WHERE EXISTS (SELECT FROM ' || s || '.es_aggregates a WHERE a.id = g.aggregate_id)
      ON CONFLICT DO NOTHING';
    EXECUTE 'DROP TABLE ' || s || '.es_aggregate_snapshots';
  END IF;
END $meowmx$;
CREATE TABLE IF NOT EXISTS {{schema}}.es_aggregate_snapshot (
  aggregate_id      {{id_type}} NOT NULL,
  version           INTEGER     NOT NULL,
  json_data         JSON        NOT NULL,
  aggregate_type    TEXT,
  snapshot_version  INTEGER,
  state_shape       TEXT,
  PRIMARY KEY (aggregate_id, version)
);

-- 2. No index twice. An index of Go's (001 named them idx_es_aggregates_*
-- and idx_es_events_* before) that another index matches by definition
-- (same table, columns, operator classes, collations, uniqueness,
-- predicate and expressions, access method) is dropped, whatever either
-- is called; one that nothing matches takes the Python client's name, so
-- that the Python client's CREATE INDEX IF NOT EXISTS finds it.
DO $meowmx$
DECLARE
  s text := current_setting('meowmx.schema');
  r RECORD;
  mine regclass;
BEGIN
  FOR r IN SELECT * FROM (VALUES
      ('idx_es_aggregates_aggregate_type', 'idx_es_aggregate_aggregate_type'),
      ('idx_es_events_transaction_id_id',  'idx_es_event_transaction_id_id')) v(go_name, py_name)
  LOOP
    mine := to_regclass(s || '.' || quote_ident(r.go_name));
    CONTINUE WHEN mine IS NULL;
    IF EXISTS (
        SELECT FROM pg_index i, pg_index o, pg_class ic, pg_class oc
        WHERE i.indexrelid = mine AND o.indrelid = i.indrelid AND o.indexrelid <> i.indexrelid
          AND ic.oid = i.indexrelid AND oc.oid = o.indexrelid AND oc.relam = ic.relam
          AND o.indkey::text = i.indkey::text AND o.indclass::text = i.indclass::text
          AND o.indcollation::text = i.indcollation::text AND o.indoption::text = i.indoption::text
          AND o.indisunique = i.indisunique AND o.indisvalid
          AND pg_get_expr(o.indpred, o.indrelid) IS NOT DISTINCT FROM pg_get_expr(i.indpred, i.indrelid)
          AND pg_get_expr(o.indexprs, o.indrelid) IS NOT DISTINCT FROM pg_get_expr(i.indexprs, i.indrelid)) THEN
      EXECUTE 'DROP INDEX ' || mine::text;
    ELSIF to_regclass(s || '.' || quote_ident(r.py_name)) IS NULL THEN
      EXECUTE 'ALTER INDEX ' || mine::text || ' RENAME TO ' || quote_ident(r.py_name);
    END IF;
  END LOOP;
END $meowmx$;

-- 3. An honest recorded time. created_at is nullable: NULL is an event
-- whose write time was never recorded (written before these tables were
-- adopted). Before this migration, 001 gave such events the time of the
-- transaction that adopted the tables, which is its applied_at: those
-- are set back to NULL.
ALTER TABLE {{schema}}.es_events ALTER COLUMN created_at DROP NOT NULL;
UPDATE {{schema}}.es_events SET created_at = NULL
WHERE created_at = (SELECT applied_at FROM {{schema}}.meowmx_migrations WHERE version = 1)
  AND (SELECT applied_at FROM {{schema}}.meowmx_migrations WHERE version = 1) < now();

-- 4. Whether a subscription's filter is stored. Rows that Go writes have
-- it (filter_stored); rows that the Python client inserts (it names three
-- columns) take the default, false: their aggregate_types NULL does not
-- mean "every event" but "not recorded", and a listing infers the filter
-- from the event at the checkpoint instead. Rows from before this
-- migration that Go ever ran are Go's.
ALTER TABLE {{schema}}.es_event_subscriptions
  ADD COLUMN IF NOT EXISTS filter_stored BOOLEAN NOT NULL DEFAULT false;
UPDATE {{schema}}.es_event_subscriptions s SET filter_stored = true
WHERE aggregate_types IS NOT NULL OR event_types IS NOT NULL OR owner_id IS NOT NULL
   OR lease_until IS NOT NULL OR progress_at IS NOT NULL OR group_name IS NOT NULL
   OR partition_count IS NOT NULL
   OR EXISTS (SELECT FROM {{schema}}.es_subscription_workers w WHERE w.subscription_name = s.subscription_name);
