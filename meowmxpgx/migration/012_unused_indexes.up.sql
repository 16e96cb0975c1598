-- Indexes that no query needs, made by the Python client's setup: each
-- costs every append an index insertion, and disk (each about 7.5 B an
-- event for 100 000 events in 1 000 streams of 100).
--
-- idx_es_event_aggregate_id (aggregate_id) is a prefix of UNIQUE
-- (aggregate_id, version), which serves every read by stream, Go's and
-- Python's. idx_es_event_version (version) serves no query: versions are
-- only ever read within a stream. The same holds for the snapshots'
-- idx_es_aggregate_snapshot_aggregate_id, a prefix of the primary key
-- (aggregate_id, version), and idx_es_aggregate_snapshot_version.
--
-- The Python client's setup creates them again when it runs after this
-- (CREATE INDEX IF NOT EXISTS): nothing breaks, the cost comes back. The
-- indexes that earn their cost are listed in docs/BENCHMARKS.md ("Which
-- query needs which index").
DROP INDEX IF EXISTS {{schema}}.idx_es_event_aggregate_id;
DROP INDEX IF EXISTS {{schema}}.idx_es_event_version;
DROP INDEX IF EXISTS {{schema}}.idx_es_aggregate_snapshot_aggregate_id;
DROP INDEX IF EXISTS {{schema}}.idx_es_aggregate_snapshot_version;
