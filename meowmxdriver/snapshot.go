package meowmxdriver

// SnapshotExecutor stores aggregate snapshots. (Filled in by the aggregates
// work.)
type SnapshotExecutor interface{}
