package meowmx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// AppendResult describes the events an append wrote.
type AppendResult struct {
	// Stream is the stream appended to.
	Stream StreamID
	// Version is the stream's version after the append: the version of its
	// last event.
	Version int64
	// Events describe the appended events, in the order given.
	Events []AppendedEvent
}

// AppendedEvent describes one appended event.
type AppendedEvent struct {
	Version    int64
	Position   Position
	RecordedAt time.Time
}

// Append writes events to a stream, atomically and at consecutive versions,
// if the stream is at the expected version. It runs in a transaction of its
// own.
//
// A stream that is not at the expected version gets an error matching
// ErrConcurrency (a *ConcurrencyError), an aggregate id of another type an
// error matching ErrAggregateTypeMismatch, bad input one matching
// ErrInvalidArgument; in each case nothing is written.
//
// Retrying an append whose events carry UUIDs is safe: when the same events
// are already stored at the versions this append would give them, Append
// returns the original result and writes nothing. The same UUIDs with other
// content or elsewhere get an error matching ErrDuplicateEvent.
func (s *Store[TTx]) Append(ctx context.Context, stream StreamID, expected ExpectedVersion, events ...EventData) (*AppendResult, error) {
	return s.append(ctx, s.driver.Executor(), false, stream, expected, events)
}

// AppendTx is Append inside the caller's transaction: the events commit or
// roll back with it, together with whatever else the caller writes. It
// never commits or rolls back tx.
//
// On PostgreSQL the events' global position is the caller's transaction id,
// so subscribers see them only once that transaction ends: keep it short.
// When a concurrent transaction writes the same version or event UUID first,
// PostgreSQL aborts tx and the error matches ErrConcurrency.
//
// On SQLite tx holds the write lock, so no other writer can interleave: begin
// it on meowmxsqlite.Driver.DB, whose transactions start with BEGIN
// IMMEDIATE. The append runs in a savepoint: when it fails, tx goes on
// without it.
func (s *Store[TTx]) AppendTx(ctx context.Context, tx TTx, stream StreamID, expected ExpectedVersion, events ...EventData) (*AppendResult, error) {
	return s.append(ctx, s.driver.UnwrapExecutor(tx), true, stream, expected, events)
}

func (s *Store[TTx]) append(ctx context.Context, exec meowmxdriver.Executor, inTx bool, stream StreamID, expected ExpectedVersion, events []EventData) (*AppendResult, error) {
	p, err := appendParams(stream, expected, events)
	if err != nil {
		return nil, err
	}
	res, err := exec.EventAppend(ctx, p)
	switch {
	case errors.Is(err, meowmxdriver.ErrDuplicate):
		return nil, fmt.Errorf("%w: %w", &ConcurrencyError{Stream: stream, Expected: expected, Actual: -2}, err)
	case errors.Is(err, meowmxdriver.ErrInvalidInput):
		return nil, &ArgumentError{Arg: "append to " + stream.String(), Reason: "refused by the database", Err: err}
	case err != nil:
		return nil, fmt.Errorf("meowmx: append to %s: %w", stream, err)
	}
	if res.Appended {
		return appendResult(stream, res.Events), nil
	}
	return s.refused(ctx, exec, stream, expected, events, res.Stream)
}

// refused explains an append that wrote nothing: an idempotent retry, a
// type mismatch or a version conflict.
func (s *Store[TTx]) refused(ctx context.Context, exec meowmxdriver.Executor, stream StreamID, expected ExpectedVersion, events []EventData, found *meowmxdriver.StreamRow) (*AppendResult, error) {
	if events[0].UUID != uuid.Nil {
		res, err := s.retried(ctx, exec, stream, expected, events)
		if res != nil || err != nil {
			return res, err
		}
	}
	actual := int64(-1)
	if found != nil {
		if found.AggregateType != stream.Type {
			return nil, &AggregateTypeError{ID: stream.ID, Type: found.AggregateType, Requested: stream.Type}
		}
		actual = found.Version
	}
	return nil, &ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
}

// retried returns the original result when events were appended before,
// unchanged, where this append would have put them; nil when none of their
// UUIDs is stored; and a *DuplicateEventError otherwise.
func (s *Store[TTx]) retried(ctx context.Context, exec meowmxdriver.Executor, stream StreamID, expected ExpectedVersion, events []EventData) (*AppendResult, error) {
	uuids := make([][]byte, len(events))
	for i := range events {
		uuids[i] = events[i].UUID[:]
	}
	rows, err := exec.EventListByUUID(ctx, &meowmxdriver.EventListByUUIDParams{EventUUIDs: uuids})
	if err != nil {
		return nil, fmt.Errorf("meowmx: append to %s: %w", stream, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	byUUID := make(map[uuid.UUID]*meowmxdriver.EventRow, len(rows))
	for _, r := range rows {
		byUUID[uuid.UUID(r.EventUUID)] = r
	}
	stored := make([]AppendedEvent, len(events))
	for i, ev := range events {
		r := byUUID[ev.UUID]
		var reason string
		switch {
		case r == nil:
			reason = "only in part: event " + events[0].UUID.String() + " is stored but not " + ev.UUID.String()
		case r.AggregateID != stream.ID || r.AggregateType != stream.Type:
			reason = fmt.Sprintf("in stream %s/%s", r.AggregateType, r.AggregateID)
		case r.EventType != ev.Type || !bytes.Equal(r.Data, ev.Data) || !bytes.Equal(r.Metadata, ev.Metadata):
			reason = "with other content"
		case i > 0 && r.Version != stored[0].Version+int64(i):
			reason = "at other versions"
		case i == 0 && expected >= -1 && r.Version != int64(expected)+1:
			reason = fmt.Sprintf("at version %d, not %d", r.Version, int64(expected)+1)
		}
		if reason != "" {
			return nil, &DuplicateEventError{UUID: ev.UUID, Reason: reason}
		}
		stored[i] = AppendedEvent{
			Version:    r.Version,
			Position:   Position{TransactionID: r.TransactionID, EventID: r.ID},
			RecordedAt: r.RecordedAt,
		}
	}
	return &AppendResult{Stream: stream, Version: stored[len(stored)-1].Version, Events: stored}, nil
}

func appendResult(stream StreamID, rows []meowmxdriver.AppendedEvent) *AppendResult {
	res := &AppendResult{Stream: stream, Events: make([]AppendedEvent, len(rows))}
	for i, r := range rows {
		res.Events[i] = AppendedEvent{
			Version:    r.Version,
			Position:   Position{TransactionID: r.TransactionID, EventID: r.ID},
			RecordedAt: r.RecordedAt,
		}
	}
	res.Version = rows[len(rows)-1].Version
	return res
}

// appendParams validates an append and turns it into driver parameters.
func appendParams(stream StreamID, expected ExpectedVersion, events []EventData) (*meowmxdriver.EventAppendParams, error) {
	if err := checkName("aggregate type", stream.Type); err != nil {
		return nil, err
	}
	if err := checkName("aggregate id", stream.ID); err != nil {
		return nil, err
	}
	if !expected.valid() {
		return nil, &ArgumentError{Arg: "expected version", Reason: fmt.Sprintf("%d is below -1", int64(expected))}
	}
	if len(events) == 0 {
		return nil, &ArgumentError{Arg: "events", Reason: "none given"}
	}
	p := &meowmxdriver.EventAppendParams{
		AggregateID:   stream.ID,
		AggregateType: stream.Type,
		Expected:      int64(expected),
		EventTypes:    make([]string, len(events)),
		Data:          make([][]byte, len(events)),
		Metadata:      make([][]byte, len(events)),
	}
	withUUIDs := events[0].UUID != uuid.Nil
	if withUUIDs {
		p.EventUUIDs = make([][]byte, len(events))
	}
	seen := make(map[uuid.UUID]bool)
	for i := range events {
		ev := &events[i]
		arg := func(field string) string { return fmt.Sprintf("events[%d].%s", i, field) }
		if err := checkName(arg("type"), ev.Type); err != nil {
			return nil, err
		}
		if err := checkJSON(arg("data"), ev.Data, false); err != nil {
			return nil, err
		}
		if err := checkJSON(arg("metadata"), ev.Metadata, true); err != nil {
			return nil, err
		}
		if (ev.UUID != uuid.Nil) != withUUIDs {
			return nil, &ArgumentError{Arg: arg("uuid"), Reason: "give every event of an append a UUID, or none"}
		}
		if withUUIDs {
			if seen[ev.UUID] {
				return nil, &ArgumentError{Arg: arg("uuid"), Reason: ev.UUID.String() + " appears twice"}
			}
			seen[ev.UUID] = true
			p.EventUUIDs[i] = ev.UUID[:]
		}
		p.EventTypes[i] = ev.Type
		p.Data[i] = ev.Data
		p.Metadata[i] = ev.Metadata
	}
	return p, nil
}

func checkName(arg, s string) error {
	switch {
	case s == "":
		return &ArgumentError{Arg: arg, Reason: "empty"}
	case !utf8.ValidString(s):
		return &ArgumentError{Arg: arg, Reason: "not valid UTF-8"}
	case strings.IndexByte(s, 0) >= 0:
		return &ArgumentError{Arg: arg, Reason: "contains a NUL byte"}
	}
	return nil
}

func checkJSON(arg string, b []byte, optional bool) error {
	switch {
	case b == nil && optional:
		return nil
	case len(b) == 0:
		return &ArgumentError{Arg: arg, Reason: "empty; want JSON"}
	case !utf8.Valid(b):
		return &ArgumentError{Arg: arg, Reason: "not valid UTF-8"}
	case !json.Valid(b):
		return &ArgumentError{Arg: arg, Reason: "not valid JSON"}
	}
	return nil
}
