package meowmx

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxtype"
)

var (
	// ErrConcurrency matches every *ConcurrencyError: the stream was not at
	// the expected version, and nothing was written. Reload, decide again
	// and retry.
	ErrConcurrency = errors.New("meowmx: wrong expected version")
	// ErrInvalidArgument matches every *ArgumentError: the call was refused
	// before anything was written.
	ErrInvalidArgument = meowmxtype.ErrInvalidArgument
	// ErrAggregateTypeMismatch matches every *AggregateTypeError: the
	// aggregate id belongs to a stream of another aggregate type.
	ErrAggregateTypeMismatch = errors.New("meowmx: aggregate id exists under another aggregate type")
	// ErrDuplicateEvent matches every *DuplicateEventError: an event UUID
	// is already stored with other content or at another place.
	ErrDuplicateEvent = errors.New("meowmx: event UUID already stored")
	// ErrStreamNotFound is returned when a stream does not exist.
	ErrStreamNotFound = errors.New("meowmx: stream not found")
	// ErrNotMigrated is returned when the tables do not exist: run
	// Store.Migrate (or `meowmx migrate`) first.
	ErrNotMigrated = meowmxtype.ErrNotMigrated
	// ErrUnknownEventType matches every *UnknownEventTypeError: an event's
	// type is not in the Registry.
	ErrUnknownEventType = errors.New("meowmx: unknown event type")
	// ErrRetriesExhausted matches every *RetriesExhaustedError:
	// Repository.Update met a version conflict on each of its attempts.
	ErrRetriesExhausted = errors.New("meowmx: update retries exhausted")
)

// ConcurrencyError reports an append refused because its stream was not at
// the expected version. Nothing of the append was written.
type ConcurrencyError struct {
	Stream   StreamID
	Expected ExpectedVersion
	// Actual is the stream's version when the append was refused: -1 when
	// it had no events. It is known only when Err is nil.
	Actual int64
	// Err, when not nil, is why the stream's version is unknown: a
	// concurrent transaction wrote the same version or event UUID first
	// (on PostgreSQL that aborts the caller's transaction, in AppendTx),
	// or kept writing the stream ahead of the append.
	Err error
}

// Error implements the error interface.
func (e *ConcurrencyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("meowmx: stream %s was written concurrently, expected version %s: %v", e.Stream, e.Expected, e.Err)
	}
	return fmt.Sprintf("meowmx: stream %s is at version %d, expected %s", e.Stream, e.Actual, e.Expected)
}

// Is makes errors.Is(err, ErrConcurrency) true.
func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrency }

// Unwrap returns Err.
func (e *ConcurrencyError) Unwrap() error { return e.Err }

// ArgumentError reports a call refused for bad input. Nothing was written.
type ArgumentError = meowmxtype.ArgumentError

// AggregateTypeError reports an append to an aggregate id that exists
// under another aggregate type. Nothing was written.
type AggregateTypeError struct {
	ID string
	// Type is the aggregate type the id belongs to.
	Type string
	// Requested is the aggregate type the append named.
	Requested string
}

// Error implements the error interface.
func (e *AggregateTypeError) Error() string {
	return fmt.Sprintf("meowmx: aggregate id %q belongs to aggregate type %q, not %q", e.ID, e.Type, e.Requested)
}

// Is makes errors.Is(err, ErrAggregateTypeMismatch) true.
func (e *AggregateTypeError) Is(target error) bool { return target == ErrAggregateTypeMismatch }

// DuplicateEventError reports an append whose event UUIDs are stored
// already, but not as this append would write them: other content, another
// stream or other versions; or an import's batch with a UUID stored with
// another event, or given twice. Nothing of the append, or of the batch,
// was written.
type DuplicateEventError struct {
	UUID uuid.UUID
	// Reason says what is wrong with the event, as a clause: "is stored
	// in stream order/1".
	Reason string
	// Err is the database's refusal, when there was one (an import's
	// batch); nil otherwise.
	Err error
}

// Error implements the error interface.
func (e *DuplicateEventError) Error() string {
	return fmt.Sprintf("meowmx: event %s %s", e.UUID, e.Reason)
}

// Unwrap returns Err.
func (e *DuplicateEventError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrDuplicateEvent) true.
func (e *DuplicateEventError) Is(target error) bool { return target == ErrDuplicateEvent }

// UnknownEventTypeError reports an event whose type, after upcasting, is
// not registered: the code no longer (or not yet) knows it. Events are
// history: a reader may choose to skip it (RepositoryConfig.SkipUnknownEvents).
type UnknownEventTypeError struct {
	// Type is the event type after upcasting.
	Type string
	// StoredType is the event type as stored.
	StoredType string
	Stream     StreamID
	Version    int64
}

// Error implements the error interface.
func (e *UnknownEventTypeError) Error() string {
	if e.StoredType != e.Type {
		return fmt.Sprintf("meowmx: event %s@%d: unknown event type %q (stored as %q)", e.Stream, e.Version, e.Type, e.StoredType)
	}
	return fmt.Sprintf("meowmx: event %s@%d: unknown event type %q", e.Stream, e.Version, e.Type)
}

// Is makes errors.Is(err, ErrUnknownEventType) true.
func (e *UnknownEventTypeError) Is(target error) bool { return target == ErrUnknownEventType }

// RetriesExhaustedError reports a Repository.Update that met a version
// conflict on every attempt. Nothing of the last attempt was written. It
// wraps the last *ConcurrencyError, so errors.Is(err, ErrConcurrency) is
// true as well.
type RetriesExhaustedError struct {
	ID       string
	Attempts int
	// Err is the conflict of the last attempt.
	Err error
}

// Error implements the error interface.
func (e *RetriesExhaustedError) Error() string {
	return fmt.Sprintf("meowmx: update of %q: version conflict on each of %d attempts: %v", e.ID, e.Attempts, e.Err)
}

// Is makes errors.Is(err, ErrRetriesExhausted) true.
func (e *RetriesExhaustedError) Is(target error) bool { return target == ErrRetriesExhausted }

// Unwrap returns the last conflict.
func (e *RetriesExhaustedError) Unwrap() error { return e.Err }
