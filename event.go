package meowmx

import (
	"encoding/json"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxtype"
)

// StreamID names a stream: the aggregate type (its category, such as
// "order") and the aggregate id. Aggregate ids are unique across types: an
// id belongs to the type it was first written with. Ids and types are at
// most MaxNameLength bytes, on every backend: longer ones are refused with
// a *NameTooLongError before anything reaches the database.
type StreamID = meowmxtype.StreamID

// EventData is an event to append.
type EventData struct {
	// Type is the event type, such as "OrderPlaced". Required; at most
	// MaxNameLength bytes.
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
type RecordedEvent = meowmxtype.RecordedEvent

// Position is a place in the global order of events: events are ordered by
// the id of the transaction that wrote them, then by event id. The zero
// Position is before every event. See [meowmxtype.Position].
type Position = meowmxtype.Position

// ParsePosition reads a Position written by Position.String. It returns an
// error matching ErrInvalidArgument for anything else.
func ParsePosition(s string) (Position, error) { return meowmxtype.ParsePosition(s) }
