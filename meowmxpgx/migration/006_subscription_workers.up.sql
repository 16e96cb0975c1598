-- The workers of a subscription, owner and standbys: each records itself
-- whenever it takes or renews the lease, or tries to, until seen_until
-- (its next try is due well before). The Python client ignores the table.
CREATE TABLE IF NOT EXISTS {{schema}}.es_subscription_workers (
  subscription_name TEXT        NOT NULL
    REFERENCES {{schema}}.es_event_subscriptions (subscription_name) ON DELETE CASCADE,
  worker_id         TEXT        NOT NULL,
  host              TEXT        NOT NULL,
  pid               INTEGER     NOT NULL,
  seen_until        TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (subscription_name, worker_id)
);
