package meowmxdriver

import "context"

// SnapshotExecutor stores aggregate snapshots: in es_aggregate_snapshot on
// PostgreSQL (the Python client's name there), es_aggregate_snapshots on SQLite
// (its name there).
type SnapshotExecutor interface {
	// SnapshotGetLatest returns the snapshot of an aggregate with the
	// highest version at or below MaxVersion, or ErrNotFound.
	SnapshotGetLatest(ctx context.Context, p *SnapshotGetLatestParams) (*SnapshotRow, error)
	// SnapshotSave stores a snapshot, replacing one stored at the same
	// aggregate id and version.
	SnapshotSave(ctx context.Context, p *SnapshotSaveParams) error
}

// SnapshotGetLatestParams are the inputs of SnapshotGetLatest. MaxVersion
// < 0 means no upper bound.
type SnapshotGetLatestParams struct {
	AggregateID string
	MaxVersion  int64
}

// SnapshotSaveParams are the inputs of SnapshotSave. The fields are those
// of SnapshotRow.
type SnapshotSaveParams = SnapshotRow

// SnapshotRow is one row of the snapshot table.
type SnapshotRow struct {
	AggregateID string
	// Version is the version of the last event the state includes.
	Version int64
	// Data is the state as JSON.
	Data []byte
	// AggregateType is the aggregate type of the state; "" on rows written
	// by other clients.
	AggregateType string
	// SnapshotVersion is the version of the state's meaning, set by the
	// user (meowmx.RepositoryConfig.SnapshotVersion); -1 on rows written by
	// other clients.
	SnapshotVersion int64
	// StateShape fingerprints the Go type of the state; "" on rows written
	// by other clients.
	StateShape string
}
