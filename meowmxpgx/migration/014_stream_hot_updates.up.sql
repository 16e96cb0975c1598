-- Moving a stream's version is a HOT update again. Every append and every
-- imported batch updates its streams' rows in es_aggregates; the version
-- INCLUDEd in idx_es_aggregates_type_id (migration 009) made each update
-- write a new entry into all three of the table's indexes, and dead rows
-- piled up faster than VACUUM took them: importing 1 000 000 events of
-- 10 000 streams (an update per stream per batch) left es_aggregates at
-- 58 MB for 10 000 rows, each batch's upsert at 34 µs a stream, and the
-- import at 26 000 events/s. The index now holds the type and the id
-- only (the console's pages read the version from the table), and the
-- table's pages keep half their room for new versions of their rows, so
-- that an update stays on its page and leaves the indexes alone: the
-- same import then made 99.9 % of its updates HOT, kept the table at
-- 1.4 MB and ran at 58 000 events/s. The fill factor applies to pages
-- written from now on. Upgrading a large store: the index is built again
-- under the migration's lock, and appends wait for it.
DROP INDEX IF EXISTS {{schema}}.idx_es_aggregates_type_id;
DO $meowmx$
DECLARE
  s text := current_setting('meowmx.schema'); -- quoted (see 001)
BEGIN
  IF lower('{{id_type}}') = 'uuid' THEN
    EXECUTE 'CREATE INDEX IF NOT EXISTS idx_es_aggregates_type_id ON ' || s ||
      '.es_aggregates (aggregate_type COLLATE "C", id)';
  ELSE
    EXECUTE 'CREATE INDEX IF NOT EXISTS idx_es_aggregates_type_id ON ' || s ||
      '.es_aggregates (aggregate_type COLLATE "C", id COLLATE "C")';
  END IF;
END $meowmx$;
ALTER TABLE {{schema}}.es_aggregates SET (fillfactor = 50);
