package meowmx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults of SubscriptionConfig.
const (
	// BatchSizeDefault is the default of SubscriptionConfig.BatchSize.
	BatchSizeDefault = 1000
	// MaxAttemptsDefault is the default of SubscriptionConfig.MaxAttempts.
	MaxAttemptsDefault = 3
	// RetryBackoffDefault is the default of SubscriptionConfig.RetryBackoff.
	RetryBackoffDefault = 100 * time.Millisecond
	// RetryBackoffMax caps the doubling of RetryBackoff.
	RetryBackoffMax = 30 * time.Second
	// PollIntervalDefault is the default of SubscriptionConfig.PollInterval.
	PollIntervalDefault = 200 * time.Millisecond
	// MaxPollIntervalDefault is the default of
	// SubscriptionConfig.MaxPollInterval.
	MaxPollIntervalDefault = 5 * time.Second
	// LockIntervalDefault is the default of SubscriptionConfig.LockInterval.
	LockIntervalDefault = 500 * time.Millisecond
	// LeaseTimeoutDefault is the default of SubscriptionConfig.LeaseTimeout.
	LeaseTimeoutDefault = 10 * time.Second
	// HorizonWarnAfterDefault is the default of
	// SubscriptionConfig.HorizonWarnAfter.
	HorizonWarnAfterDefault = time.Minute
	// MaxPartitions caps SubscriptionConfig.Partitions.
	MaxPartitions = 1024
)

// FailurePolicy says what a subscription does with an event whose handler
// failed SubscriptionConfig.MaxAttempts times.
type FailurePolicy int

const (
	// FailureStop stops the subscription: RunSubscription returns a
	// *HandlerError and the checkpoint stays before the event. The default.
	FailureStop FailurePolicy = iota
	// FailurePark parks the event (see Store.ParkedEvents) and goes on.
	// Later events of the same stream are parked behind it, unless
	// SubscriptionConfig.PassParked is set; Store.ReplayParked hands them to
	// the handler again, in order.
	FailurePark
)

// StartFrom says where a new subscription starts. The zero value starts
// from the beginning. It is ignored when the subscription exists: a
// restart continues after its last handled event.
type StartFrom struct {
	// End starts after the last event readable when the subscription is
	// created: it sees every event committed after that, and none before
	// (on PostgreSQL, events of transactions committed just before may be
	// seen too, when they were not yet below the horizon).
	End bool
	// After starts after this position, when End is false.
	After Position
}

// Handler handles the events of a subscription one by one. It runs in tx,
// the transaction in which the checkpoint advances: what it writes there
// commits together with the checkpoint, or not at all, so a read model
// updated in tx is updated exactly once. Effects outside tx (an e-mail, a
// call to another service) are at-least-once: the event is handled again
// when the transaction rolls back.
//
// On PostgreSQL, tx takes a transaction id at its first write and holds the
// commit horizon back, for every subscriber in the database, until it ends:
// write late and keep handlers quick, or use a smaller
// SubscriptionConfig.CheckpointEvery.
type Handler[TTx any] interface {
	HandleEvent(ctx context.Context, tx TTx, ev *RecordedEvent) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc[TTx any] func(ctx context.Context, tx TTx, ev *RecordedEvent) error

// HandleEvent calls f.
func (f HandlerFunc[TTx]) HandleEvent(ctx context.Context, tx TTx, ev *RecordedEvent) error {
	return f(ctx, tx, ev)
}

// BatchHandler handles the events of a subscription a batch at a time, in
// the transaction in which the checkpoint advances past them (see
// Handler). When it fails, the batch is handed to it again one event at a
// time, to find the failing event and apply the failure policy to it alone.
type BatchHandler[TTx any] interface {
	HandleEvents(ctx context.Context, tx TTx, evs []*RecordedEvent) error
}

// BatchHandlerFunc adapts a function to BatchHandler.
type BatchHandlerFunc[TTx any] func(ctx context.Context, tx TTx, evs []*RecordedEvent) error

// HandleEvents calls f.
func (f BatchHandlerFunc[TTx]) HandleEvents(ctx context.Context, tx TTx, evs []*RecordedEvent) error {
	return f(ctx, tx, evs)
}

// SubscriptionConfig configures Store.RunSubscription. Name and one of
// Handler or BatchHandler are required; every other field's zero value
// means its default.
type SubscriptionConfig[TTx any] struct {
	// Name identifies the subscription and its checkpoint. Required.
	Name string
	// AggregateTypes, when not empty, selects the events of these aggregate
	// types (categories) only.
	AggregateTypes []string
	// EventTypes, when not empty, selects the events of these types only.
	EventTypes []string
	// StartFrom says where a new subscription starts. Defaults to the
	// beginning.
	StartFrom StartFrom
	// Partitions, above 1, makes the subscription a consumer group of that
	// many partitions: the events of each stream belong to one partition
	// (PartitionOf its aggregate id), and each partition has its own
	// checkpoint, lease and parked events. The workers running the group,
	// in any number of processes, share its partitions evenly, each
	// partition owned by one worker at a time, so each stream is handled
	// in order; see RunSubscription. It is set when the subscription is
	// created: RunSubscription refuses another number with an error
	// matching ErrPartitionsChanged. At most MaxPartitions. Defaults to 0,
	// one worker owning the whole subscription.
	Partitions int

	// Handler handles one event at a time. Set Handler or BatchHandler.
	Handler Handler[TTx]
	// BatchHandler handles many events per call, for throughput.
	BatchHandler BatchHandler[TTx]

	// BatchSize is how many events one query reads. Defaults to
	// BatchSizeDefault.
	BatchSize int
	// CheckpointEvery is how many events are handled per transaction, the
	// checkpoint advancing at its end: 1 gives one transaction per event.
	// Defaults to BatchSize: one transaction per batch read.
	CheckpointEvery int

	// SynchronousCommit makes each handler transaction wait, at its
	// commit, until the commit is flushed to disk. Defaults to false: on
	// PostgreSQL the transactions run with synchronous_commit off, so a
	// server crash may lose the last fraction of a second of them. That
	// costs no correctness: the handler's writes and the checkpoint are
	// lost together, and the events are handled again after the restart
	// (exactly once in the database; effects outside it were at-least-once
	// anyway). It spares a disk flush per transaction, which is most of
	// the cost of catching up.
	SynchronousCommit bool

	// MaxAttempts is how many times an event is handed to the handler
	// before OnFailure applies. A failure of the handler's transaction
	// whose connection broke (the server restarted, say) is not counted:
	// it is retried as a database error. Defaults to MaxAttemptsDefault.
	MaxAttempts int
	// RetryBackoff is the wait before the second attempt; it doubles with
	// each further attempt, up to RetryBackoffMax. Defaults to
	// RetryBackoffDefault.
	RetryBackoff time.Duration
	// OnFailure is what happens to an event that failed MaxAttempts times.
	// Defaults to FailureStop.
	OnFailure FailurePolicy
	// PassParked lets later events of a stream that has a parked event go
	// to the handler. Defaults to false: they are parked behind it, so the
	// handler sees each stream in order.
	PassParked bool

	// PollInterval is the first wait between two reads that found nothing;
	// the wait doubles up to MaxPollInterval, and a notification ends it.
	// Defaults to PollIntervalDefault.
	PollInterval time.Duration
	// MaxPollInterval caps the polling back-off. Defaults to
	// MaxPollIntervalDefault.
	MaxPollInterval time.Duration
	// LockInterval is how often a standby worker tries to take the
	// subscription over, and how often its owner renews its lease. Defaults to LockIntervalDefault.
	LockInterval time.Duration
	// LeaseTimeout is how long the owner's lease on the subscription
	// lasts without renewal: an owner that stops renewing it (hung,
	// frozen, cut off from the database) loses the subscription that long
	// after its last renewal, and another worker takes over; when it
	// wakes, its commits are refused. The owner renews every LockInterval
	// and with every checkpoint, so a handler transaction must end within
	// LeaseTimeout. At least twice LockInterval. Defaults to
	// LeaseTimeoutDefault.
	LeaseTimeout time.Duration
	// HorizonWarnAfter is how long a transaction may hold the commit
	// horizon back before the worker logs a warning naming its session.
	// Defaults to HorizonWarnAfterDefault; -1 turns the warning off.
	HorizonWarnAfter time.Duration
}

func (c *SubscriptionConfig[TTx]) withDefaults() (*SubscriptionConfig[TTx], error) {
	if c == nil {
		return nil, &ArgumentError{Arg: "SubscriptionConfig", Reason: "nil"}
	}
	out := *c
	out.BatchSize = cmp.Or(out.BatchSize, BatchSizeDefault)
	out.CheckpointEvery = cmp.Or(out.CheckpointEvery, out.BatchSize)
	out.MaxAttempts = cmp.Or(out.MaxAttempts, MaxAttemptsDefault)
	out.RetryBackoff = cmp.Or(out.RetryBackoff, RetryBackoffDefault)
	out.PollInterval = cmp.Or(out.PollInterval, PollIntervalDefault)
	out.MaxPollInterval = cmp.Or(out.MaxPollInterval, max(MaxPollIntervalDefault, out.PollInterval))
	out.LockInterval = cmp.Or(out.LockInterval, LockIntervalDefault)
	out.LeaseTimeout = cmp.Or(out.LeaseTimeout, max(LeaseTimeoutDefault, 2*out.LockInterval))
	out.HorizonWarnAfter = cmp.Or(out.HorizonWarnAfter, HorizonWarnAfterDefault)
	return &out, out.validate()
}

func (c *SubscriptionConfig[TTx]) validate() error {
	bad := func(arg, reason string) error {
		return &ArgumentError{Arg: "SubscriptionConfig." + arg, Reason: reason}
	}
	if err := checkName("SubscriptionConfig.Name", c.Name); err != nil {
		return err
	}
	for _, t := range c.AggregateTypes {
		if err := checkName("SubscriptionConfig.AggregateTypes", t); err != nil {
			return err
		}
	}
	for _, t := range c.EventTypes {
		if err := checkName("SubscriptionConfig.EventTypes", t); err != nil {
			return err
		}
	}
	switch {
	case (c.Handler == nil) == (c.BatchHandler == nil):
		return bad("Handler", "set exactly one of Handler and BatchHandler")
	case c.BatchSize < 0:
		return bad("BatchSize", fmt.Sprintf("%d is negative", c.BatchSize))
	case c.CheckpointEvery < 0:
		return bad("CheckpointEvery", fmt.Sprintf("%d is negative", c.CheckpointEvery))
	case c.MaxAttempts < 0:
		return bad("MaxAttempts", fmt.Sprintf("%d is negative", c.MaxAttempts))
	case c.RetryBackoff < 0:
		return bad("RetryBackoff", "negative")
	case c.OnFailure != FailureStop && c.OnFailure != FailurePark:
		return bad("OnFailure", fmt.Sprintf("unknown policy %d", c.OnFailure))
	case c.PollInterval < 0:
		return bad("PollInterval", "negative")
	case c.MaxPollInterval < c.PollInterval:
		return bad("MaxPollInterval", "below PollInterval")
	case c.LockInterval < 0:
		return bad("LockInterval", "negative")
	case c.LeaseTimeout < 2*c.LockInterval:
		return bad("LeaseTimeout", fmt.Sprintf("%s is below twice LockInterval (%s)", c.LeaseTimeout, c.LockInterval))
	case c.HorizonWarnAfter < -1:
		return bad("HorizonWarnAfter", "negative (use -1 to turn the warning off)")
	case c.Partitions < 0 || c.Partitions > MaxPartitions:
		return bad("Partitions", fmt.Sprintf("%d is not between 0 and %d", c.Partitions, MaxPartitions))
	case c.StartFrom.End && c.StartFrom.After != (Position{}):
		return bad("StartFrom", "set End or After, not both")
	case c.StartFrom.After.EventID < 0:
		return bad("StartFrom.After", "negative event id")
	}
	return nil
}

var (
	// ErrHandler matches every *HandlerError.
	ErrHandler = errors.New("meowmx: subscription handler failed")
	// ErrCheckpointAhead matches every *CheckpointAheadError.
	ErrCheckpointAhead = errors.New("meowmx: subscription checkpoint is ahead of the database")
	// ErrSubscriptionNotFound is returned for a subscription that does not
	// exist, and by RunSubscription when its subscription is deleted while
	// it runs.
	ErrSubscriptionNotFound = errors.New("meowmx: subscription not found")
	// ErrPartitionsChanged is returned by RunSubscription for a config
	// whose Partitions differ from those the subscription was created
	// with. A subscription's partitions never change: each holds the
	// checkpoint of its streams. Run it under a new name (StartFrom where
	// the old one is), or delete it and start it again.
	ErrPartitionsChanged = errors.New("meowmx: a subscription's partitions cannot change")
)

// HandlerError reports an event that a subscription's handler failed on
// MaxAttempts times, under FailureStop. The checkpoint stays before it.
type HandlerError struct {
	Subscription string
	Position     Position
	StreamID     StreamID
	Version      int64
	Attempts     int
	// Err is the handler's last error; a *PanicError when it panicked.
	Err error
}

// Error implements the error interface.
func (e *HandlerError) Error() string {
	return fmt.Sprintf("meowmx: subscription %q: handler failed %d times on event %s (%s version %d): %v",
		e.Subscription, e.Attempts, e.Position, e.StreamID, e.Version, e.Err)
}

// Is makes errors.Is(err, ErrHandler) true.
func (e *HandlerError) Is(target error) bool { return target == ErrHandler }

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }

// PanicError is a handler's panic, recovered and turned into an error.
type PanicError struct {
	Value any
	Stack []byte
}

// Error implements the error interface.
func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }

// CheckpointAheadError reports a checkpoint whose transaction id is at or
// above the database's next transaction id: the database was restored from
// a dump (or the checkpoint copied from another database), and no event
// will ever come after the checkpoint. Rebase the subscription with
// Store.ResetSubscription to the position, in this database, of the last
// event it handled (its event id is CheckpointAheadError.Checkpoint.EventID;
// see doc.go, "Restored databases").
type CheckpointAheadError struct {
	Subscription string
	Checkpoint   Position
	// NextTransactionID is the database's next transaction id.
	NextTransactionID uint64
}

// Error implements the error interface.
func (e *CheckpointAheadError) Error() string {
	return fmt.Sprintf("meowmx: subscription %q: checkpoint %s is ahead of the database's next transaction id %d "+
		"(restored from a dump?): reset it to the position, in this database, of the last event it handled", e.Subscription, e.Checkpoint, e.NextTransactionID)
}

// Is makes errors.Is(err, ErrCheckpointAhead) true.
func (e *CheckpointAheadError) Is(target error) bool { return target == ErrCheckpointAhead }
