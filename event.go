package meowmx

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// StreamID names a stream: the aggregate type (its category, such as
// "order") and the aggregate id. Aggregate ids are unique across types: an
// id belongs to the type it was first written with.
type StreamID struct {
	Type string
	ID   string
}

// String returns "type/id".
func (s StreamID) String() string { return s.Type + "/" + s.ID }

// EventData is an event to append.
type EventData struct {
	// Type is the event type, such as "OrderPlaced". Required.
	Type string
	// Data is the JSON payload. Required; any JSON value.
	Data json.RawMessage
	// Metadata is optional JSON stored beside the payload (correlation ids,
	// the user who caused it). Nil means none.
	Metadata json.RawMessage
	// UUID optionally identifies the event for idempotent retries: an
	// append whose events' UUIDs are already stored, with the same content
	// at the same versions, succeeds without writing again. Give every event
	// of an append a UUID, or none.
	UUID uuid.UUID
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	// Position is the event's place in the global order.
	Position Position
	// StreamID is the stream the event belongs to.
	StreamID StreamID
	// Version is the event's 0-based position in its stream.
	Version int64
	// Type is the event type.
	Type string
	// Data is the JSON payload, byte for byte as appended.
	Data json.RawMessage
	// Metadata is the JSON metadata, or nil.
	Metadata json.RawMessage
	// UUID is the event's UUID, or the zero UUID when it was appended
	// without one.
	UUID uuid.UUID
	// RecordedAt is when the event was written (the database's clock).
	RecordedAt time.Time
}

// Position is a place in the global order of events: events are ordered by
// the id of the transaction that wrote them, then by event id. The zero
// Position is before every event.
//
// On PostgreSQL, TransactionID is pg_current_xact_id() of the writing
// transaction; on SQLite, where one writer commits at a time, it is 0 and
// the event id alone gives the order.
type Position struct {
	TransactionID uint64
	EventID       int64
}

// Compare returns -1, 0 or +1 as p is before, equal to or after o.
func (p Position) Compare(o Position) int {
	switch {
	case p.TransactionID < o.TransactionID:
		return -1
	case p.TransactionID > o.TransactionID:
		return 1
	case p.EventID < o.EventID:
		return -1
	case p.EventID > o.EventID:
		return 1
	}
	return 0
}

// String returns "transaction_id:event_id", the form ParsePosition reads.
func (p Position) String() string {
	return strconv.FormatUint(p.TransactionID, 10) + ":" + strconv.FormatInt(p.EventID, 10)
}

// MarshalText implements encoding.TextMarshaler.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ParsePosition reads a Position written by Position.String. It returns an
// error matching ErrInvalidArgument for anything else.
func ParsePosition(s string) (Position, error) {
	tx, id, ok := strings.Cut(s, ":")
	if ok {
		t, err1 := strconv.ParseUint(tx, 10, 64)
		i, err2 := strconv.ParseInt(id, 10, 64)
		if err1 == nil && err2 == nil && i >= 0 {
			return Position{TransactionID: t, EventID: i}, nil
		}
	}
	return Position{}, &ArgumentError{Arg: "position", Reason: fmt.Sprintf("%q is not transaction_id:event_id", s)}
}
