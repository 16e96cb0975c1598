-- Consumer groups: see the PostgreSQL driver's migration 007. Partition
-- rows name their group in group_name; the connections do not turn on
-- foreign keys, so SubscriptionDelete deletes a group's partitions itself.
ALTER TABLE es_event_subscriptions ADD COLUMN group_name TEXT;
ALTER TABLE es_event_subscriptions ADD COLUMN partition_no INTEGER;
ALTER TABLE es_event_subscriptions ADD COLUMN partition_count INTEGER;
CREATE INDEX IF NOT EXISTS idx_es_event_subscriptions_group_name
  ON es_event_subscriptions (group_name) WHERE group_name IS NOT NULL;
