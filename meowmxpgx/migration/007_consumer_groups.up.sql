-- Consumer groups: a subscription split into partition_count partitions by
-- a hash of the aggregate id (meowmxtype.PartitionOf). The group's own row
-- has partition_count set; each partition is a row of its own, named
-- "<group>#<n>", with group_name, partition_no and partition_count set, and
-- its own checkpoint, lease and parked events, so that everything a
-- subscription does works per partition. All nullable: the Python client
-- keeps working on es_event_subscriptions, and its rows are not groups.
ALTER TABLE {{schema}}.es_event_subscriptions
  ADD COLUMN IF NOT EXISTS group_name      TEXT
    REFERENCES {{schema}}.es_event_subscriptions (subscription_name) ON DELETE CASCADE,
  ADD COLUMN IF NOT EXISTS partition_no    INTEGER,
  ADD COLUMN IF NOT EXISTS partition_count INTEGER;
CREATE INDEX IF NOT EXISTS idx_es_event_subscriptions_group_name
  ON {{schema}}.es_event_subscriptions (group_name) WHERE group_name IS NOT NULL;
