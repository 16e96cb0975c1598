-- Snapshots written by the Go client say what they hold, so that a loader
-- never uses a snapshot of another aggregate type, of another meaning
-- (snapshot_version, set by the user) or of another Go struct (state_shape,
-- a fingerprint of its JSON shape). Nullable: rows of other clients have
-- none and are never used.
ALTER TABLE {{schema}}.es_aggregate_snapshots
  ADD COLUMN IF NOT EXISTS aggregate_type   TEXT,
  ADD COLUMN IF NOT EXISTS snapshot_version INTEGER,
  ADD COLUMN IF NOT EXISTS state_shape      TEXT;
