// Package meowmxdriver is the boundary between the meowmx store and the
// databases it runs on. It is an internal contract between package meowmx and
// its drivers (meowmxpgx, meowmxsqlite).
//
// API is not stable. DO NOT IMPLEMENT outside this module: the interfaces
// change whenever the public API in package meowmx needs them to.
//
// Every executor method has the shape NounVerb(ctx, *NounVerbParams) and
// returns rows or a result struct. Drivers return facts (the row was not
// updated, the stream is at version 7); package meowmx turns facts into the
// typed errors users see. Drivers map their own "no rows" into [ErrNotFound].
package meowmxdriver

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by executor methods that look up one row that
// does not exist.
var ErrNotFound = errors.New("meowmxdriver: not found")

// ErrInvalidInput is wrapped by drivers when the database refuses a value
// (an aggregate id that is not a UUID for a UUID column, text too long for a
// CHAR(n) column). Package meowmx reports it as an argument error.
var ErrInvalidInput = errors.New("meowmxdriver: invalid input")

// Driver gives package meowmx executors for one database. TTx is the
// driver's native transaction type (pgx.Tx, *sql.Tx).
type Driver[TTx any] interface {
	// Executor returns an executor that runs each call on the pool, in its
	// own transaction.
	Executor() Executor
	// UnwrapExecutor returns an executor that runs on the caller's
	// transaction. It never commits or rolls back.
	UnwrapExecutor(tx TTx) Executor
	// Begin starts a transaction owned by the caller of Begin.
	Begin(ctx context.Context) (ExecutorTx, error)
	// UnwrapTx returns the native transaction behind an ExecutorTx made by
	// Begin.
	UnwrapTx(tx ExecutorTx) TTx
	// Migrate creates or upgrades the tables.
	Migrate(ctx context.Context, p *MigrateParams) (*MigrateResult, error)
	// Name is a short name for logs and errors: "postgres", "sqlite".
	Name() string
	// Capabilities tells what the database guarantees beyond the common
	// ground.
	Capabilities() Capabilities
}

// BatchAppender is implemented by drivers that run several appends in one
// transaction faster than AppendBatchInTx does, such as meowmxpgx (one
// round trip). Package meowmx uses AppendBatchInTx with Driver.Begin for
// drivers without it.
type BatchAppender interface {
	// EventAppendBatch runs several appends in one transaction of its
	// own, in the order given, each as EventAppend would run it: a later
	// append sees the earlier ones' effects. It returns one result per
	// append, in input order, once the transaction committed. A refused
	// append (wrong version, UUID already stored) has Appended false and
	// leaves the others alone; its Stream may be nil even when the stream
	// exists (the caller reads it). When one append raises an error, the
	// transaction is rolled back and the error is a *BatchItemError naming
	// it. Any other error concerns the whole batch: nothing was written,
	// unless it wraps ErrCommitUnknown.
	EventAppendBatch(ctx context.Context, ps []*EventAppendParams) ([]*EventAppendResult, error)
}

// Capabilities lists the features that only some drivers have.
type Capabilities struct {
	// Listen is true when the driver can wake subscribers across processes
	// (PostgreSQL LISTEN/NOTIFY).
	Listen bool
	// Horizon is true when reads across streams filter on a commit horizon
	// (PostgreSQL's pg_snapshot_xmin). Drivers without it must assign
	// positions in commit order (SQLite: one writer at a time).
	Horizon bool
}

// Executor runs statements either on a pool or in a transaction.
type Executor interface {
	EventExecutor
	SubscriptionExecutor
	SnapshotExecutor
}

// ExecutorTx is an Executor bound to a transaction that its owner ends.
type ExecutorTx interface {
	Executor
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
	// CommitAdvance moves a checkpoint from p.From to p.To and commits: in
	// one round trip where the database allows it. It is fenced: when the
	// stored checkpoint is not exactly p.From it returns false and the
	// transaction is rolled back, so that nothing of it is written.
	CommitAdvance(ctx context.Context, p *SubscriptionAdvanceParams) (bool, error)
}

// MigrateParams are the inputs of Driver.Migrate.
type MigrateParams struct {
	// AggregateIDType is the SQL type of the aggregate id columns when the
	// tables are created: "TEXT" (the default), "UUID" or "CHAR(n)". It is
	// ignored when the tables exist.
	AggregateIDType string
}

// MigrateResult tells what Driver.Migrate did.
type MigrateResult struct {
	// Applied lists the versions applied by this call, in order.
	Applied []int
	// Version is the schema version after the call.
	Version int
}

// EventRow is one event as stored.
type EventRow struct {
	ID            int64
	TransactionID uint64
	AggregateID   string
	AggregateType string
	Version       int64
	EventType     string
	Data          []byte
	Metadata      []byte // nil when absent
	EventUUID     []byte // 16 bytes, or nil when absent
	RecordedAt    time.Time
}

// ErrNotMigrated is returned when the tables do not exist: run the
// migrations first.
var ErrNotMigrated = errors.New("meowmxdriver: tables not found (run the migrations)")
