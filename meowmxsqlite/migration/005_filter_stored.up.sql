-- Whether a subscription's filter is stored (see the PostgreSQL migration
-- 008): rows that the Python client inserts take the default, 0, and a
-- listing infers their filter from the event at their checkpoint. Rows
-- from before this migration that Go ever ran are Go's.
ALTER TABLE es_event_subscriptions ADD COLUMN filter_stored INTEGER NOT NULL DEFAULT 0;
UPDATE es_event_subscriptions SET filter_stored = 1
WHERE aggregate_types IS NOT NULL OR event_types IS NOT NULL OR owner_id IS NOT NULL
   OR lease_until IS NOT NULL OR progress_at IS NOT NULL OR group_name IS NOT NULL
   OR partition_count IS NOT NULL
   OR EXISTS (SELECT 1 FROM es_subscription_workers w WHERE w.subscription_name = es_event_subscriptions.subscription_name);
