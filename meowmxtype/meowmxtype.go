// Package meowmxtype holds the values that package meowmx and its drivers
// share: events, positions, streams, expected versions and the argument
// error. Package meowmx re-exports every name here (meowmx.RecordedEvent
// is meowmxtype.RecordedEvent), so users import meowmx only; drivers
// import this package to return the same values without converting them.
//
// It is a leaf: it imports nothing of this module.
package meowmxtype

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// StreamID names a stream: the aggregate type (its category, such as
// "order") and the aggregate id. Aggregate ids are unique across types: an
// id belongs to the type it was first written with. Both are non-empty
// UTF-8 without NUL, at most meowmx.MaxNameLength (1024) bytes, on every
// backend.
type StreamID struct {
	Type string
	ID   string
}

// String returns "type/id".
func (s StreamID) String() string { return s.Type + "/" + s.ID }

// StreamInfo describes a stream.
type StreamInfo struct {
	StreamID StreamID
	// Version is the version of the stream's last event, -1 when it has
	// none (the Python client creates such streams).
	Version int64
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
	// RecordedAt is when the event was written (the database's clock),
	// or the zero time when that was never recorded: events that another
	// client (the Python meowmx) wrote before the tables were adopted.
	RecordedAt time.Time
}

// AppendedEvent describes one appended event.
type AppendedEvent struct {
	Version    int64
	Position   Position
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
	shown := s
	if len(shown) > 48 { // user input is never repeated whole
		shown = shown[:48] + "…"
	}
	return Position{}, &ArgumentError{Arg: "position", Reason: fmt.Sprintf("%q is not transaction_id:event_id", shown)}
}

// ExpectedVersion is what an append expects of its stream: a version
// (0 or more), or one of AnyVersion, NoStream and StreamExists.
type ExpectedVersion int64

const (
	// AnyVersion appends whatever the stream's version; it creates the
	// stream when it does not exist.
	AnyVersion ExpectedVersion = -1 << 63
	// NoStream appends only to a stream that has no events yet.
	NoStream ExpectedVersion = -1
	// StreamExists appends only to a stream that has at least one event.
	StreamExists ExpectedVersion = -1<<63 + 1
)

// Exact expects the stream to be at version v: its last event has version
// v. Exact(-1) is NoStream; below -1 is invalid and refused by Append.
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// String returns "any", "no-stream", "exists" or the version.
func (e ExpectedVersion) String() string {
	switch e {
	case AnyVersion:
		return "any"
	case NoStream:
		return "no-stream"
	case StreamExists:
		return "exists"
	}
	return strconv.FormatInt(int64(e), 10)
}

// Valid tells whether e is a version of -1 or more or one of the named
// values.
func (e ExpectedVersion) Valid() bool {
	return e >= -1 || e == AnyVersion || e == StreamExists
}

// Matches tells whether a stream at version actual (-1: no events)
// satisfies e.
func (e ExpectedVersion) Matches(actual int64) bool {
	switch e {
	case AnyVersion:
		return true
	case StreamExists:
		return actual >= 0
	}
	return int64(e) == actual
}

// ErrInvalidArgument matches every *ArgumentError: the call was refused
// before anything was written.
var ErrInvalidArgument = errors.New("meowmx: invalid argument")

// ArgumentError reports a call refused for bad input. Nothing was written.
type ArgumentError struct {
	// Arg names the argument: "aggregate type", "events[2].data".
	Arg    string
	Reason string
	// Err is the underlying error, if any: the database's refusal of a
	// value, for instance. Its message ends the ArgumentError's.
	Err error
}

// Error implements the error interface.
func (e *ArgumentError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("meowmx: invalid %s: %s: %v", e.Arg, e.Reason, e.Err)
	}
	return fmt.Sprintf("meowmx: invalid %s: %s", e.Arg, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// Unwrap returns the underlying error.
func (e *ArgumentError) Unwrap() error { return e.Err }

// HorizonHolder is a database session whose open transaction holds the
// commit horizon back: events committed after its transaction started are
// not delivered to subscribers until it ends.
type HorizonHolder struct {
	// PID is the server process id (pg_stat_activity.pid), 0 for a
	// prepared transaction.
	PID int32
	// State is pg_stat_activity.state, such as "idle in transaction", or
	// "prepared".
	State string
	// Database is the database the session is connected to
	// (pg_stat_activity.datname; a prepared transaction's database): a
	// transaction in any database of the server holds the horizon back.
	Database string
	// Application is the session's application_name (a prepared
	// transaction's gid).
	Application string
	// TransactionID is the transaction's id.
	TransactionID uint64
	// TransactionStart is when its transaction started; Age how long ago.
	TransactionStart time.Time
	Age              time.Duration
	// Query is the session's current or last statement, shortened.
	Query string
}

// LagCountMax is how many events behind its checkpoint a subscription's
// lag counts exactly (SubscriptionInfo.Lag); more are estimated.
const LagCountMax = 10000

// SubscriptionInfo describes a subscription, as Store.Subscriptions lists
// it.
type SubscriptionInfo struct {
	Name string
	// Position is the checkpoint: the last event handled (or parked).
	Position Position
	// AggregateTypes and EventTypes are the filter the subscription last
	// ran with; nil selects everything (or the subscription never ran
	// from Go).
	AggregateTypes []string
	EventTypes     []string
	// FilterInferred is set when the subscription's row holds no filter
	// of its own (the Python client created it and Go never ran it): its
	// AggregateTypes are then inferred from the event at its checkpoint,
	// the aggregate type that the Python client's subscription reads.
	FilterInferred bool
	// LagUnknown is set when the filter is neither stored nor inferable
	// (a Python client's subscription that has not handled an event yet):
	// Lag, Waiting and OldestUnhandled are then left zero, not counted
	// over every event.
	LagUnknown bool
	// Lag counts the committed events after Position that the filter
	// selects: how far behind the head the subscription is. Up to
	// LagCountMax events are counted; beyond, Lag is an estimate.
	Lag int64
	// LagEstimated is set when Lag is an estimate: the events of any
	// type whose id is above the checkpoint's, which for a filtered
	// subscription counts more than it will handle.
	LagEstimated bool
	// OldestUnhandled is when the first event after Position that the
	// filter selects was recorded: the zero time when there is none (or
	// its time is unknown).
	OldestUnhandled time.Time
	// Waiting counts those of them that cannot be read yet because an
	// older transaction is still open (PostgreSQL): see HorizonHeldBy.
	Waiting int64
	// Parked counts the subscription's parked events.
	Parked int64
	// Ahead is set when the checkpoint is ahead of the database's next
	// transaction id (a restored database): RunSubscription fails with a
	// *CheckpointAheadError until it is reset.
	Ahead bool
	// HorizonHeldBy lists, when Waiting is not 0, the sessions whose open
	// transactions hold the commit horizon back, oldest first.
	HorizonHeldBy []*HorizonHolder

	// Owner is the worker whose lease on the subscription holds, or nil
	// when none does (no worker runs it, or its owner stopped renewing).
	Owner *SubscriptionOwner
	// Standbys are the other workers running the subscription, ready to
	// take it over.
	Standbys []SubscriptionOwner
	// LeaseLeft is how long the owner's lease holds without renewal.
	LeaseLeft time.Duration
	// SinceProgress is how long ago a worker last committed the
	// checkpoint or found nothing new to handle; -1 when never.
	SinceProgress time.Duration
	// State sums the above up.
	State SubscriptionState

	// Partitions is how many partitions the subscription is split into,
	// when it is a consumer group (SubscriptionConfig.Partitions); 0 when
	// it is not. A group's Lag, Waiting and Parked sum its partitions',
	// its Position is the lowest of theirs, and its Owner is nil: each
	// partition has its own, in PartitionInfos.
	Partitions int
	// Members are the workers taking part in a consumer group.
	Members []SubscriptionOwner
	// PartitionInfos describes each partition of a consumer group, by
	// partition number.
	PartitionInfos []*SubscriptionInfo
	// Group, for a partition of a consumer group, is the group's name;
	// Partition is the partition's number, from 0 to Partitions-1.
	Group     string
	Partition int
}

// PartitionOf returns the partition, from 0 to partitions-1, that the
// events of the stream with this aggregate id belong to in a consumer
// group of that many partitions: the first four bytes of the MD5 digest
// of the id, as a big-endian unsigned integer, modulo partitions. It is
// stable across processes, machines and languages (PostgreSQL:
// ('x' || left(md5(id), 8))::bit(32)::bigint % partitions). It returns 0
// when partitions is below 2.
func PartitionOf(aggregateID string, partitions int) int {
	if partitions < 2 {
		return 0
	}
	return int(PartitionHash(aggregateID) % uint32(partitions))
}

// PartitionHash is the hash of PartitionOf before the modulo: the first
// four bytes of the MD5 digest of the aggregate id, big-endian. The
// PostgreSQL driver stores it with each event (es_events.partition_hash).
func PartitionHash(aggregateID string) uint32 {
	sum := md5.Sum([]byte(aggregateID))
	return binary.BigEndian.Uint32(sum[:4])
}

// PartitionName returns the name of a consumer group's partition: the
// group's name, "#" and the partition's number ("orders#3"). Each
// partition is a subscription of that name, with its own checkpoint,
// lease and parked events.
func PartitionName(group string, partition int) string {
	return group + "#" + strconv.Itoa(partition)
}

// SubscriptionOwner identifies a worker that owns a subscription.
type SubscriptionOwner struct {
	// ID is unique to one RunSubscription call.
	ID string
	// Host and PID are the worker's host name and process id.
	Host string
	PID  int
}

// String returns "host/pid/id", the form ParseSubscriptionOwner reads.
func (o SubscriptionOwner) String() string { return o.Host + "/" + strconv.Itoa(o.PID) + "/" + o.ID }

// ParseSubscriptionOwners reads owners written by SubscriptionOwner.String.
func ParseSubscriptionOwners(ss []string) []SubscriptionOwner {
	var out []SubscriptionOwner
	for _, s := range ss {
		out = append(out, ParseSubscriptionOwner(s))
	}
	return out
}

// ParseSubscriptionOwner reads an owner written by SubscriptionOwner.String.
func ParseSubscriptionOwner(s string) SubscriptionOwner {
	host, rest, _ := strings.Cut(s, "/")
	pid, id, _ := strings.Cut(rest, "/")
	n, _ := strconv.Atoi(pid)
	return SubscriptionOwner{ID: id, Host: host, PID: n}
}

// SubscriptionState is what a subscription's workers are doing, as far as
// the database tells.
type SubscriptionState string

// States of a subscription.
const (
	// SubscriptionRunning: a worker holds the lease and keeps up.
	SubscriptionRunning SubscriptionState = "running"
	// SubscriptionStalled: a worker holds the lease, events wait, and it
	// has made no progress for a while (meowmx.StalledAfter).
	SubscriptionStalled SubscriptionState = "stalled"
	// SubscriptionStandingBy: no worker holds the lease, and workers stand
	// by to take it (the owner left or died a moment ago).
	SubscriptionStandingBy SubscriptionState = "standing by"
	// SubscriptionStopped: no worker runs the subscription.
	SubscriptionStopped SubscriptionState = "stopped"
)

// ErrNotMigrated is returned when the tables do not exist: run
// Store.Migrate (or `meowmx migrate`) first.
var ErrNotMigrated = errors.New("meowmx: tables not found (run the migrations)")

// ErrCommitUnknown matches errors of appends whose outcome is unknown: the
// append was sent, then the connection to the database broke (or the
// caller's context ended) before the commit was confirmed. Its events may
// or may not be stored.
var ErrCommitUnknown = errors.New("meowmx: outcome unknown: the transaction may have committed")

// CategoryInfo describes a category (aggregate type): how many streams it
// has and how many events they hold.
type CategoryInfo struct {
	Type string
	// Streams is the number of streams of the category, and Events the
	// number of their events.
	Streams, Events int64
	// Estimated is true when the category has more streams than were
	// counted: Streams and Events are then estimates (from the database's
	// statistics where it keeps them, else the counted part: a lower
	// bound).
	Estimated bool
}
