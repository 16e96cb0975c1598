package meowmxdriver

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Expected-version sentinels, shared by package meowmx and the drivers.
// Values >= -1 are exact versions (-1: the stream has no events).
const (
	ExpectedAny          int64 = -1 << 63   // no check
	ExpectedStreamExists int64 = -1<<63 + 1 // at least one event
	ExpectedNoStream     int64 = -1         // no events yet
)

// ErrDuplicate is returned by EventAppend inside a caller's transaction when
// a unique constraint refused the events (an event UUID or a version stored
// by another writer). The transaction is then aborted.
var ErrDuplicate = errors.New("meowmxdriver: duplicate event")

// EventExecutor writes and reads events.
type EventExecutor interface {
	// EventAppend appends events to one stream if its version matches
	// Expected and none of the event UUIDs is stored yet, in one statement.
	// Otherwise it writes nothing and returns Appended false with the stream
	// as found.
	EventAppend(ctx context.Context, p *EventAppendParams) (*EventAppendResult, error)
	// EventListByUUID returns the stored events that carry the given UUIDs,
	// in (aggregate_id, version) order.
	EventListByUUID(ctx context.Context, p *EventListByUUIDParams) ([]*EventRow, error)
	// EventReadAll returns events after a position in (transaction_id, id)
	// order, below the commit horizon where the driver has one.
	EventReadAll(ctx context.Context, p *EventReadAllParams) ([]*EventRow, error)
	// StreamGet returns the aggregate row of a stream, or ErrNotFound.
	StreamGet(ctx context.Context, p *StreamGetParams) (*StreamRow, error)
	// StreamRead returns events of one stream by version.
	StreamRead(ctx context.Context, p *StreamReadParams) ([]*EventRow, error)
}

// EventAppendParams are the inputs of EventAppend. The slices have one
// element per event.
type EventAppendParams struct {
	AggregateID   string
	AggregateType string
	Expected      int64
	EventTypes    []string
	Data          [][]byte
	Metadata      [][]byte // elements may be nil
	EventUUIDs    [][]byte // nil, or one 16-byte UUID (or nil) per event
	// LockFirst asks EventAppend, outside a caller's transaction, to lock
	// the stream before its transaction writes anything. Package meowmx
	// sets it when it runs an append again because a transaction that
	// began writing later wrote the stream first: a transaction that
	// waits for the lock before it takes its id comes after the stream's
	// last writer (PostgreSQL: es_aggregates.last_transaction_id).
	LockFirst bool
}

// EventAppendResult is the outcome of EventAppend.
type EventAppendResult struct {
	// Appended is true when the events were written.
	Appended bool
	// Events are the written events' ids, transaction id and versions, in
	// input order, when Appended.
	Events []AppendedEvent
	// Stream is the stream as found when nothing was written: nil when the
	// aggregate id does not exist. EventAppendBatch may leave it nil.
	Stream *StreamRow
}

// AppendedEvent identifies one written event.
type AppendedEvent struct {
	ID            int64
	TransactionID uint64
	Version       int64
	RecordedAt    time.Time
}

// EventListByUUIDParams are the inputs of EventListByUUID.
type EventListByUUIDParams struct {
	EventUUIDs [][]byte
}

// EventReadAllParams are the inputs of EventReadAll.
type EventReadAllParams struct {
	AfterTransactionID uint64
	AfterID            int64
	// AggregateTypes and EventTypes filter when non-empty.
	AggregateTypes []string
	EventTypes     []string
	Limit          int
}

// StreamGetParams are the inputs of StreamGet.
type StreamGetParams struct {
	AggregateID string
}

// StreamRow is one row of es_aggregates. Version is -1 for a stream that
// has a row but no events (the Python client creates such rows).
type StreamRow struct {
	AggregateID   string
	AggregateType string
	Version       int64
}

// StreamReadParams are the inputs of StreamRead. From and To are inclusive
// versions; To < 0 means no upper bound.
type StreamReadParams struct {
	AggregateID string
	From        int64
	To          int64
	Backward    bool
	Limit       int
}

// ErrCommitUnknown is wrapped by drivers when a write failed after it was
// sent and its transaction may have committed: the connection broke, or
// the caller's context ended while waiting for the answer. Whether the
// events were stored is unknown.
var ErrCommitUnknown = errors.New("meowmxdriver: outcome unknown: the transaction may have committed")

// BatchItemError is returned by BatchAppender.EventAppendBatch when one append
// raised an error (a unique violation from a concurrent writer, a value the
// database refuses, a deadlock). The whole transaction was rolled back:
// nothing of the batch was written. The caller retries the others without
// the append at Index, and that one on its own.
type BatchItemError struct {
	// Index is the position of the failing append in the batch.
	Index int
	// Err is the append's error, as EventAppend would return it in a
	// caller's transaction.
	Err error
}

// Error implements the error interface.
func (e *BatchItemError) Error() string {
	return fmt.Sprintf("meowmxdriver: append %d of the batch failed: %v", e.Index, e.Err)
}

// Unwrap returns Err.
func (e *BatchItemError) Unwrap() error { return e.Err }

// AppendBatchInTx does what BatchAppender.EventAppendBatch does, with a
// transaction from begin and one EventAppend per append. It serves drivers
// that do not implement BatchAppender; a database with a single writer
// (SQLite) needs nothing faster. Any error of an append is a
// *BatchItemError, and an error of the commit is returned as is: a driver
// whose commit can fail without telling whether it happened should
// implement BatchAppender and wrap ErrCommitUnknown.
func AppendBatchInTx(ctx context.Context, begin func(context.Context) (ExecutorTx, error), ps []*EventAppendParams) ([]*EventAppendResult, error) {
	tx, err := begin(ctx)
	if err != nil {
		return nil, err
	}
	results := make([]*EventAppendResult, len(ps))
	for i, p := range ps {
		results[i], err = tx.EventAppend(ctx, p)
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return nil, &BatchItemError{Index: i, Err: err}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return results, nil
}
