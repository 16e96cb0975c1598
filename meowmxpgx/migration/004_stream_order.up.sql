-- The transaction that wrote a stream's last event. An append refuses to
-- write events under an older transaction id than that (see appendSQL):
-- they would sort before the stream's earlier events in the global order
-- (transaction_id, id) that subscribers read in. Nullable: the Python
-- client does not set it, and a NULL never refuses.
ALTER TABLE {{schema}}.es_aggregates
  ADD COLUMN IF NOT EXISTS last_transaction_id XID8;
