-- Consumer groups: each event's partition hash (meowmxtype.PartitionOf
-- before the modulo: the first 4 bytes of md5(aggregate id), big-endian),
-- stored with the event. A partition's read then filters the events as it
-- walks the (transaction_id, id) index, and looks up es_aggregates only
-- for its own events: computing the hash, or joining es_aggregates for it,
-- cost 3 to 4 µs for each event of the other partitions, and capped a
-- group of 8 at a third of a single subscription's speed. A generated
-- column, so events that the Python client inserts get it too. Adding it
-- rewrites es_events once (1.3 s for 300 000 events here), under an
-- exclusive lock: plan the upgrade of a large store.
ALTER TABLE {{schema}}.es_events
  ADD COLUMN IF NOT EXISTS partition_hash BIGINT
    GENERATED ALWAYS AS ((('x' || left(md5(aggregate_id::text), 8))::bit(32)::bigint)) STORED;
