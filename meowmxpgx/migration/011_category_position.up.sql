-- Category reads proportional to the category. A category's events were
-- found by walking the (transaction_id, id) index over every category and
-- looking up each event's stream in es_aggregates: a page of 1 000 events
-- of one category of two read about 2 000 index entries and made 2 000
-- lookups; with 1 000 categories, a read of one walked the whole store.
-- Each event now carries its stream's aggregate type, and an index orders
-- each category's events by position: a category read walks its own
-- events only, with the same commit horizon and order.
--
-- meowmx's appends and imports write the column. Writers that do not — the
-- Python client, plain SQL — get it from the trigger below, which looks the
-- type up in es_aggregates when the column is NULL (the Python tables'
-- foreign key makes the stream's row exist first; an event whose stream
-- row does not exist yet keeps NULL, and category reads do not see it).
-- Nullable, so the Python client's inserts stay valid.
--
-- Upgrading a large store: the backfill rewrites es_events once (for 1
-- million events, tens of seconds), under the migration's lock.
ALTER TABLE {{schema}}.es_events
  ADD COLUMN IF NOT EXISTS aggregate_type TEXT;

UPDATE {{schema}}.es_events e SET aggregate_type = a.aggregate_type
  FROM {{schema}}.es_aggregates a
  WHERE a.id = e.aggregate_id AND e.aggregate_type IS NULL;

-- The body names no schema (a schema's name could end its quoting): the
-- function finds es_aggregates on the search path it is created with.
CREATE OR REPLACE FUNCTION {{schema}}.meowmx_event_aggregate_type() RETURNS trigger
LANGUAGE plpgsql SET search_path = {{schema}} AS $meowmx$
BEGIN
  SELECT a.aggregate_type INTO NEW.aggregate_type
    FROM es_aggregates a WHERE a.id = NEW.aggregate_id;
  RETURN NEW;
END;
$meowmx$;

DROP TRIGGER IF EXISTS meowmx_event_aggregate_type ON {{schema}}.es_events;
CREATE TRIGGER meowmx_event_aggregate_type
  BEFORE INSERT ON {{schema}}.es_events
  FOR EACH ROW WHEN (NEW.aggregate_type IS NULL)
  EXECUTE FUNCTION {{schema}}.meowmx_event_aggregate_type();

CREATE INDEX IF NOT EXISTS es_events_category_position
  ON {{schema}}.es_events (aggregate_type, transaction_id, id);
