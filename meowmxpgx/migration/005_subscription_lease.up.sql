-- Ownership of a subscription is a lease in its row, not a connection: the
-- owner renews it while it works (and with every checkpoint it commits); a
-- hung, frozen or partitioned owner stops renewing, and another worker
-- takes over once lease_until has passed. A checkpoint commits only for
-- the owner_id that holds the lease, so an owner that wakes after losing
-- it commits nothing. progress_at is when the owner last committed a
-- checkpoint or found nothing new to handle. All nullable: the Python
-- client keeps working on es_event_subscriptions.
ALTER TABLE {{schema}}.es_event_subscriptions
  ADD COLUMN IF NOT EXISTS owner_id    TEXT,
  ADD COLUMN IF NOT EXISTS owner_host  TEXT,
  ADD COLUMN IF NOT EXISTS owner_pid   INTEGER,
  ADD COLUMN IF NOT EXISTS lease_until TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS progress_at TIMESTAMPTZ;
