-- The workers of a subscription, owner and standbys: see the PostgreSQL
-- driver's migration 006.
CREATE TABLE IF NOT EXISTS es_subscription_workers (
  subscription_name TEXT    NOT NULL
    REFERENCES es_event_subscriptions (subscription_name) ON DELETE CASCADE,
  worker_id         TEXT    NOT NULL,
  host              TEXT    NOT NULL,
  pid               INTEGER NOT NULL,
  seen_until        TEXT    NOT NULL,
  PRIMARY KEY (subscription_name, worker_id)
) STRICT, WITHOUT ROWID;
