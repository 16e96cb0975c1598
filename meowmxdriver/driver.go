// Package meowmxdriver is the boundary between the meowmx store and the
// databases it runs on. It is an internal contract between package meowmx and
// its drivers (meowmxpgx, meowmxsqlite). The values that cross it are those
// of package meowmxtype, which package meowmx re-exports: drivers return
// events and positions as users see them. Optional features are listed in
// one place, [Capabilities].
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

	"github.com/meowmx/meowmx/meowmxtype"
)

// ErrNotFound is returned by executor methods that look up one row that
// does not exist.
var ErrNotFound = errors.New("meowmxdriver: not found")

// ErrInvalidInput is wrapped by drivers when the database refuses a value
// (an aggregate id that is not a UUID for a UUID column, text too long for a
// CHAR(n) column). Package meowmx reports it as an argument error.
var ErrInvalidInput = errors.New("meowmxdriver: invalid input")

// ErrNotMigrated is wrapped by drivers when the tables do not exist.
// Package meowmx re-exports it as meowmx.ErrNotMigrated.
var ErrNotMigrated = meowmxtype.ErrNotMigrated

// ErrCommitUnknown is wrapped by drivers when a write failed after it was
// sent and its transaction may have committed. Package meowmx re-exports it
// as meowmx.ErrCommitUnknown.
var ErrCommitUnknown = meowmxtype.ErrCommitUnknown

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
	// Capabilities tells what the driver can do beyond Executor. Package
	// meowmx reads it once, when a store is made.
	Capabilities() Capabilities
}

// Capabilities is the one place where a driver says what it has beyond
// the executors: each optional feature is a field, nil (or false) when the
// driver lacks it, or when it is switched off by the driver's config.
type Capabilities struct {
	// BatchAppender runs many appends in one transaction. With it, the
	// store groups concurrent Store.Append calls (group commit); without,
	// each runs alone, through Executor().EventAppend. A database with
	// one writer at a time (SQLite) gains nothing from grouping.
	BatchAppender BatchAppender
	// Listener wakes subscribers in other processes (PostgreSQL
	// LISTEN/NOTIFY). Without it, Store.Append wakes the subscriptions
	// of its own store, and the others poll.
	Listener Listener
	// Horizon is true when reads across streams filter on a commit
	// horizon (PostgreSQL's pg_snapshot_xmin) and HorizonGet returns it.
	// Drivers without it assign positions in commit order (SQLite: one
	// writer at a time), and HorizonGet returns a zero Horizon.
	Horizon bool
	// Browser lists categories and streams and reads events newest
	// first, for the console.
	Browser Browser
	// PartitionIndexer indexes the events of each partition of a
	// consumer group, so that a partition's read walks its own events
	// only. Without it, a partition's read skips the others' events.
	PartitionIndexer PartitionIndexer
}

// PartitionIndexer builds what lets a consumer group's partitions read
// their own events without walking the others' (an index on PostgreSQL).
type PartitionIndexer interface {
	// PartitionIndex makes sure the index for groups of partitions
	// partitions exists, building it when it does not; it may take
	// minutes on a large store, and other statements run meanwhile. A
	// driver that another process is building it for returns at once.
	// Reads are correct, only slower, without it.
	PartitionIndex(ctx context.Context, partitions int) error
}

// BatchAppender runs several appends in one transaction.
type BatchAppender interface {
	// EventAppendBatch runs several appends in one transaction of its
	// own, in the order given, each as EventAppend would run it: a later
	// append sees the earlier ones' effects. It returns one result per
	// append, in input order, once the transaction committed; a refused
	// append has Appended false and Stream as found, and leaves the
	// others alone. A batch of one append is EventAppend on the pool, its
	// errors included.
	//
	// When one append of several raises an error, the transaction is
	// rolled back and the error is a *BatchItemError naming it. Any other
	// error concerns the whole batch: nothing was written, unless it wraps
	// ErrCommitUnknown.
	EventAppendBatch(ctx context.Context, ps []*EventAppendParams) ([]*EventAppendResult, error)
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
	// SubscriptionCommit moves a checkpoint from p.From to p.To and
	// commits: in one round trip where the database allows it. It is
	// fenced: when the stored checkpoint is not exactly p.From it returns
	// false and the transaction is rolled back, so that nothing of it is
	// written.
	SubscriptionCommit(ctx context.Context, p *SubscriptionCommitParams) (bool, error)
	// Broken tells whether the transaction's connection broke: it died
	// (the server restarted, or ended the session), or the transaction
	// could not begin on any connection. Its statements then failed for
	// that, not for what they asked: a subscription retries them as after
	// a database error, without counting the handler's error as one of
	// its attempts.
	Broken() bool
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
