package meowmx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
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
type AppendedEvent = meowmxtype.AppendedEvent

// Append writes events to a stream, atomically and at consecutive versions,
// if the stream is at the expected version. It runs in a transaction of its
// own, which it may share with concurrent appends (see GroupCommitConfig);
// the outcome is the same.
//
// A stream that is not at the expected version gets an error matching
// ErrConcurrency (a *ConcurrencyError), an aggregate id of another type an
// error matching ErrAggregateTypeMismatch, bad input one matching
// ErrInvalidArgument; in each case nothing is written. When ctx ends
// before the append was sent, the error wraps ctx.Err() and nothing is
// written; when the connection breaks (or ctx ends) after it was sent, the
// error matches ErrCommitUnknown: the events may have been written.
//
// Retrying an append whose events carry UUIDs is safe: when the same events
// are already stored at the versions this append would give them, Append
// returns the original result and writes nothing. The same UUIDs with other
// content or elsewhere get an error matching ErrDuplicateEvent.
func (s *Store[TTx]) Append(ctx context.Context, stream StreamID, expected ExpectedVersion, events ...EventData) (*AppendResult, error) {
	res, err := s.append(ctx, "append", s.driver.Executor(), s.group, stream, expected, events)
	if err == nil {
		s.notifyAppended(res)
	}
	return res, err
}

// notifyAppended wakes subscriptions after an append: at once in this
// process, and through a coalesced NOTIFY sent outside the append's
// transaction in the others.
func (s *Store[TTx]) notifyAppended(res *AppendResult) {
	s.hub.Appended(res.Events[len(res.Events)-1].Position.TransactionID)
}

// AppendTx is Append inside the caller's transaction: the events commit or
// roll back with it, together with whatever else the caller writes. It
// never commits or rolls back tx, and never shares it with other appends.
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
//
// Subscriptions are woken at once, before tx commits (the store cannot see
// the commit): those that find the events not yet readable look again,
// backing off from 1 ms, until tx has ended. So the append adds nothing to
// tx's commit (no NOTIFY in it, which would take PostgreSQL's
// database-wide notify lock).
func (s *Store[TTx]) AppendTx(ctx context.Context, tx TTx, stream StreamID, expected ExpectedVersion, events ...EventData) (*AppendResult, error) {
	res, err := s.append(ctx, "append_tx", s.driver.UnwrapExecutor(tx), nil, stream, expected, events)
	if err == nil {
		s.notifyAppended(res)
	}
	return res, err
}

// append runs one append on exec, or through group when it is not nil,
// and records it (op names it in its span).
func (s *Store[TTx]) append(ctx context.Context, op string, exec meowmxdriver.Executor, group *groupCommitter, stream StreamID, expected ExpectedVersion, events []EventData) (*AppendResult, error) {
	ctx, span := s.tel.startAppend(ctx, op, stream, expected, len(events))
	res, batch, err := s.appendOnce(ctx, span, exec, group, stream, expected, events)
	s.tel.endAppend(ctx, span, res, batch, err)
	return res, err
}

// appendOnce is append, unrecorded; it returns the size of the batch the
// append was sent in (0: not grouped).
func (s *Store[TTx]) appendOnce(ctx context.Context, span appendSpan, exec meowmxdriver.Executor, group *groupCommitter, stream StreamID, expected ExpectedVersion, events []EventData) (*AppendResult, int, error) {
	p, err := appendParams(stream, expected, events)
	if err != nil {
		return nil, 0, err
	}
	if span.span != nil {
		injectTrace(p.Metadata, span.span.SpanContext())
	}
	var res *meowmxdriver.EventAppendResult
	batch := 0
	if group != nil {
		r := group.append(ctx, p)
		res, err, batch = r.res, r.err, r.batch
	} else {
		res, err = exec.EventAppend(ctx, p)
	}
	out, err := s.appended(ctx, exec, stream, expected, events, res, err)
	return out, batch, err
}

// appended turns a driver's answer to an append into its outcome.
func (s *Store[TTx]) appended(ctx context.Context, exec meowmxdriver.Executor, stream StreamID, expected ExpectedVersion, events []EventData, res *meowmxdriver.EventAppendResult, err error) (*AppendResult, error) {
	switch {
	case errors.Is(err, meowmxdriver.ErrDuplicate), errors.Is(err, meowmxdriver.ErrReordered):
		return nil, &ConcurrencyError{Stream: stream, Expected: expected, Err: err}
	case errors.Is(err, meowmxdriver.ErrInvalidInput):
		return nil, &ArgumentError{Arg: "append to " + stream.String(), Reason: "refused by the database", Err: err}
	case err != nil:
		return nil, fmt.Errorf("meowmx: append to %s: %w", stream, err)
	case res.Appended:
		return &AppendResult{Stream: stream, Version: res.Events[len(res.Events)-1].Version, Events: res.Events}, nil
	}
	return s.refused(ctx, exec, stream, expected, events, res.Stream)
}

// refused explains an append that wrote nothing: an idempotent retry, a
// type mismatch or a version conflict.
func (s *Store[TTx]) refused(ctx context.Context, exec meowmxdriver.Executor, stream StreamID, expected ExpectedVersion, events []EventData, found *StreamInfo) (*AppendResult, error) {
	if events[0].UUID != uuid.Nil {
		res, err := s.retried(ctx, exec, stream, expected, events)
		if res != nil || err != nil {
			return res, err
		}
	}
	actual := int64(-1)
	if found != nil {
		if found.StreamID.Type != stream.Type {
			return nil, &AggregateTypeError{ID: stream.ID, Type: found.StreamID.Type, Requested: stream.Type}
		}
		actual = found.Version
	}
	if expected.Matches(actual) {
		// The driver refused an append that its stream's version allows
		// and said nothing of why: a driver's defect.
		return nil, fmt.Errorf("meowmx: append to %s: refused by the %s driver at version %d, which matches %s",
			stream, s.driver.Name(), actual, expected)
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
	byUUID := make(map[uuid.UUID]*RecordedEvent, len(rows))
	for _, r := range rows {
		byUUID[r.UUID] = r
	}
	stored := make([]AppendedEvent, len(events))
	for i, ev := range events {
		r := byUUID[ev.UUID]
		var reason string
		switch {
		case r == nil:
			reason = "is not stored, but event " + events[0].UUID.String() + " of the same append is"
		case r.StreamID != stream:
			reason = "is stored in stream " + r.StreamID.String()
		case r.Type != ev.Type || !bytes.Equal(r.Data, ev.Data) || !sameMetadata(r.Metadata, ev.Metadata):
			reason = "is stored with other content"
		case i > 0 && r.Version != stored[0].Version+int64(i):
			reason = "is stored at other versions"
		case i == 0 && expected >= -1 && r.Version != int64(expected)+1:
			reason = fmt.Sprintf("is stored at version %d, not %d", r.Version, int64(expected)+1)
		}
		if reason != "" {
			return nil, &DuplicateEventError{UUID: ev.UUID, Reason: reason}
		}
		stored[i] = AppendedEvent{Version: r.Version, Position: r.Position, RecordedAt: r.RecordedAt}
	}
	return &AppendResult{Stream: stream, Version: stored[len(stored)-1].Version, Events: stored}, nil
}

// appendParams validates an append and turns it into driver parameters.
func appendParams(stream StreamID, expected ExpectedVersion, events []EventData) (*meowmxdriver.EventAppendParams, error) {
	if err := checkName("aggregate type", stream.Type); err != nil {
		return nil, err
	}
	if err := checkName("aggregate id", stream.ID); err != nil {
		return nil, err
	}
	if !expected.Valid() {
		return nil, &ArgumentError{Arg: "expected version", Reason: fmt.Sprintf("%d is below -1", int64(expected))}
	}
	if len(events) == 0 {
		return nil, &ArgumentError{Arg: "events", Reason: "none given"}
	}
	p := &meowmxdriver.EventAppendParams{
		Stream:     stream,
		Expected:   expected,
		EventTypes: make([]string, len(events)),
		Data:       make([][]byte, len(events)),
		Metadata:   make([][]byte, len(events)),
	}
	withUUIDs := events[0].UUID != uuid.Nil
	var seen map[uuid.UUID]bool
	if withUUIDs {
		p.EventUUIDs = make([][]byte, len(events))
		seen = make(map[uuid.UUID]bool, len(events))
	}
	for i := range events {
		ev := &events[i]
		// The argument's name is built only on error: appends of many
		// events are on the hot path.
		bad := func(field, reason string) error {
			return &ArgumentError{Arg: fmt.Sprintf("events[%d].%s", i, field), Reason: reason}
		}
		if r := nameProblem(ev.Type); r != "" {
			return nil, bad("type", r)
		}
		if len(ev.Type) > MaxNameLength {
			return nil, nameTooLong(fmt.Sprintf("events[%d].type", i), ev.Type)
		}
		if r := jsonProblem(ev.Data, false); r != "" {
			return nil, bad("data", r)
		}
		if r := jsonProblem(ev.Metadata, true); r != "" {
			return nil, bad("metadata", r)
		}
		if (ev.UUID != uuid.Nil) != withUUIDs {
			return nil, bad("uuid", "give every event of an append a UUID, or none")
		}
		if withUUIDs {
			if seen[ev.UUID] {
				return nil, bad("uuid", ev.UUID.String()+" appears twice")
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

// checkName checks an aggregate id or type, an event type or a
// subscription name: not empty, valid UTF-8 without NUL, at most
// MaxNameLength bytes.
func checkName(arg, s string) error {
	if r := nameProblem(s); r != "" {
		return &ArgumentError{Arg: arg, Reason: r}
	}
	return nameTooLong(arg, s)
}

// nameProblem tells what is wrong with a name (aggregate type or id, event
// type), or "" when nothing is.
func nameProblem(s string) string {
	switch {
	case s == "":
		return "empty"
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	}
	return ""
}

// jsonProblem tells what is wrong with a JSON payload, or "" when nothing
// is. Nil is fine when optional.
func jsonProblem(b []byte, optional bool) string {
	switch {
	case b == nil && optional:
		return ""
	case len(b) == 0:
		return "empty; want JSON"
	case !utf8.Valid(b):
		return "not valid UTF-8"
	case !json.Valid(b):
		return "not valid JSON"
	}
	return ""
}
