-- Ownership of a subscription is a lease in its row, shared by every
-- process on the database file: see the PostgreSQL driver's migration
-- 005. Times are text, UTC, fixed width (strftime('%Y-%m-%dT%H:%M:%fZ')),
-- so that text order is time order.
ALTER TABLE es_event_subscriptions ADD COLUMN owner_id TEXT;
ALTER TABLE es_event_subscriptions ADD COLUMN owner_host TEXT;
ALTER TABLE es_event_subscriptions ADD COLUMN owner_pid INTEGER;
ALTER TABLE es_event_subscriptions ADD COLUMN lease_until TEXT;
ALTER TABLE es_event_subscriptions ADD COLUMN progress_at TEXT;
