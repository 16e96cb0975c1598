-- The console's streams of a category, by id (the BINARY collation: byte
-- order, so ids that share a prefix are neighbours), with the version, so
-- that a page of streams and a category's counts are read from the index
-- alone.
CREATE INDEX IF NOT EXISTS idx_es_aggregates_type_id
  ON es_aggregates (aggregate_type, id, version);
