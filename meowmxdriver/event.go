package meowmxdriver

import (
	"context"
	"errors"
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
}

// EventAppendResult is the outcome of EventAppend.
type EventAppendResult struct {
	// Appended is true when the events were written.
	Appended bool
	// Events are the written events' ids, transaction id and versions, in
	// input order, when Appended.
	Events []AppendedEvent
	// Stream is the stream as found when nothing was written: nil when the
	// aggregate id does not exist.
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
