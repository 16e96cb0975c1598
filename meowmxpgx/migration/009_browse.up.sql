-- The console's streams of a category: by type, then by id, both in byte
-- order (COLLATE "C": ids that share a prefix are neighbours, so a search
-- by prefix reads one range), with the version, so that a page of streams
-- and a category's counts are read from the index alone. UUID ids have no
-- collation; the order of UUIDs is the order of their text.
DO $meowmx$
DECLARE
  s text := current_setting('meowmx.schema'); -- quoted (see 001)
BEGIN
  IF lower('{{id_type}}') = 'uuid' THEN
    EXECUTE 'CREATE INDEX IF NOT EXISTS idx_es_aggregates_type_id ON ' || s ||
      '.es_aggregates (aggregate_type COLLATE "C", id) INCLUDE (version)';
  ELSE
    EXECUTE 'CREATE INDEX IF NOT EXISTS idx_es_aggregates_type_id ON ' || s ||
      '.es_aggregates (aggregate_type COLLATE "C", id COLLATE "C") INCLUDE (version)';
  END IF;
END $meowmx$;
