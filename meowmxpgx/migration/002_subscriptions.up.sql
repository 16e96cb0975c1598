-- Subscriptions (Go): the filter a subscription was last run with, so that
-- its lag can be counted, and parked events. The new columns are nullable,
-- so the Python client keeps working on es_event_subscriptions.
ALTER TABLE {{schema}}.es_event_subscriptions
  ADD COLUMN IF NOT EXISTS aggregate_types TEXT[],
  ADD COLUMN IF NOT EXISTS event_types     TEXT[];

-- Events a subscription's handler failed on (or that wait behind such an
-- event of the same stream), kept until replayed.
CREATE TABLE IF NOT EXISTS {{schema}}.es_parked_events (
  subscription_name  TEXT        NOT NULL
    REFERENCES {{schema}}.es_event_subscriptions (subscription_name) ON DELETE CASCADE,
  transaction_id     XID8        NOT NULL,
  event_id           BIGINT      NOT NULL,
  aggregate_id       TEXT        NOT NULL,
  error              TEXT        NOT NULL,
  attempts           INTEGER     NOT NULL,
  parked_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
  replay             BOOLEAN     NOT NULL DEFAULT false,
  PRIMARY KEY (subscription_name, transaction_id, event_id)
);
CREATE INDEX IF NOT EXISTS idx_es_parked_events_aggregate
  ON {{schema}}.es_parked_events (subscription_name, aggregate_id);
