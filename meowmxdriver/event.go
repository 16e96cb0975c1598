package meowmxdriver

import (
	"context"
	"errors"
	"fmt"

	"github.com/meowmx/meowmx/meowmxtype"
)

// ErrDuplicate is returned by EventAppend inside a caller's transaction when
// a unique constraint refused the events (an event UUID or a version stored
// by another writer). On PostgreSQL the transaction is then aborted.
var ErrDuplicate = errors.New("meowmxdriver: duplicate event")

// ErrReordered is returned by EventAppend when the stream is at the
// expected version but its events could not be ordered after the stream's
// last event in the global order: a transaction that took its id later
// wrote the stream first (PostgreSQL: es_aggregates.last_transaction_id).
// Nothing was written. On the pool, the driver runs such an append again
// in a new transaction, which comes after the stream's last writer, and
// returns ErrReordered only when that keeps happening; in a caller's
// transaction it cannot, and the transaction goes on.
var ErrReordered = errors.New("meowmxdriver: stream written by a transaction that began later")

// EventExecutor writes and reads events.
type EventExecutor interface {
	// EventAppend appends events to one stream if its version matches
	// Expected and none of the event UUIDs is stored yet, in one statement
	// where the database allows it. Otherwise it writes nothing and
	// returns Appended false with the stream as found. On the pool it runs
	// in a transaction of its own, with whatever retries the database
	// needs (a deadlock's victim, ErrReordered).
	EventAppend(ctx context.Context, p *EventAppendParams) (*EventAppendResult, error)
	// EventListByUUID returns the stored events that carry the given UUIDs,
	// in (aggregate_id, version) order.
	EventListByUUID(ctx context.Context, p *EventListByUUIDParams) ([]*meowmxtype.RecordedEvent, error)
	// EventReadAll returns events after a position in (transaction_id, id)
	// order, below the commit horizon where the driver has one.
	EventReadAll(ctx context.Context, p *EventReadAllParams) ([]*meowmxtype.RecordedEvent, error)
	// EventGet returns events by id, in (transaction_id, id) order.
	EventGet(ctx context.Context, p *EventGetParams) ([]*meowmxtype.RecordedEvent, error)
	// StreamGet returns a stream, or ErrNotFound.
	StreamGet(ctx context.Context, p *StreamGetParams) (*meowmxtype.StreamInfo, error)
	// StreamRead returns events of one stream by version.
	StreamRead(ctx context.Context, p *StreamReadParams) ([]*meowmxtype.RecordedEvent, error)
}

// EventAppendParams are the inputs of EventAppend. The slices have one
// element per event.
type EventAppendParams struct {
	Stream     meowmxtype.StreamID
	Expected   meowmxtype.ExpectedVersion
	EventTypes []string
	Data       [][]byte
	Metadata   [][]byte // elements may be nil
	EventUUIDs [][]byte // nil, or one 16-byte UUID per event
}

// EventAppendResult is the outcome of EventAppend.
type EventAppendResult struct {
	// Appended is true when the events were written.
	Appended bool
	// Events are the written events, in input order, when Appended.
	Events []meowmxtype.AppendedEvent
	// Stream is the stream as found when nothing was written: nil when the
	// aggregate id does not exist.
	Stream *meowmxtype.StreamInfo
	// Err, in a result of EventAppendBatch only, is the append's own
	// error: the batch committed without it, and the driver's run of it
	// alone afterwards (ErrReordered's retry) failed as EventAppend would.
	Err error
}

// EventListByUUIDParams are the inputs of EventListByUUID.
type EventListByUUIDParams struct {
	EventUUIDs [][]byte
}

// EventReadAllParams are the inputs of EventReadAll.
type EventReadAllParams struct {
	After meowmxtype.Position
	// AggregateTypes and EventTypes filter when non-empty.
	AggregateTypes []string
	EventTypes     []string
	// Partitions above 1 selects the events of streams in Partition
	// (meowmxtype.PartitionOf) only, for a consumer group's partition.
	Partition  int
	Partitions int
	Limit      int
}

// EventGetParams are the inputs of EventGet.
type EventGetParams struct {
	IDs []int64
}

// StreamGetParams are the inputs of StreamGet.
type StreamGetParams struct {
	AggregateID string
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

// BatchItemError is returned by BatchAppender.EventAppendBatch when one append
// raised an error (a unique violation from a concurrent writer, a value the
// database refuses). The whole transaction was rolled back: nothing of the
// batch was written. The caller sends the others again without the append
// at Index, and that one on its own.
type BatchItemError struct {
	// Index is the position of the failing append in the batch.
	Index int
	// Err is the append's error.
	Err error
}

// Error implements the error interface.
func (e *BatchItemError) Error() string {
	return fmt.Sprintf("meowmxdriver: append %d of the batch failed: %v", e.Index, e.Err)
}

// Unwrap returns Err.
func (e *BatchItemError) Unwrap() error { return e.Err }

// StreamScanner is an EventExecutor that can stream a stream read: the
// executor of a pool, which may run a query while the caller runs others.
// The root package reads long streams through it in windows of many pages,
// so that the database sends rows while the reader decodes the ones before,
// as one streaming query does.
type StreamScanner interface {
	// StreamScan runs StreamRead and hands its rows to each in chunks, in
	// order, as they arrive. each returning false stops the scan: the
	// rest of the rows are read and dropped. Each chunk is a new slice of
	// new events, the caller's to keep.
	StreamScan(ctx context.Context, p *StreamReadParams, each func([]*meowmxtype.RecordedEvent) bool) error
	// EventScanAll is EventReadAll, streamed as StreamScan streams.
	EventScanAll(ctx context.Context, p *EventReadAllParams, each func([]*meowmxtype.RecordedEvent) bool) error
}
