package meowmxdriver

import (
	"context"
	"time"
)

// SubscriptionExecutor stores subscription checkpoints and parked events.
//
// A driver without a commit horizon (SQLite) implements them with plain
// statements: HorizonGet returns a zero Horizon (no horizon, nothing can be
// ahead) and HorizonHolders nil. The fencing of ExecutorTx.CommitAdvance
// (and of ParkedDelete for replays) is what makes a handler's writes
// exactly-once, whatever the locking. Such a driver need not implement
// SubscriptionLocker (package meowmx then locks within the process) nor
// ListenerDriver (Store.Append wakes the subscriptions of its own store;
// the others poll).
type SubscriptionExecutor interface {
	// SubscriptionCreate inserts a subscription at a position unless it
	// exists, and returns the row as stored (the existing one wins).
	SubscriptionCreate(ctx context.Context, p *SubscriptionCreateParams) (*SubscriptionRow, error)
	// SubscriptionGet returns one subscription, or ErrNotFound.
	SubscriptionGet(ctx context.Context, p *SubscriptionGetParams) (*SubscriptionRow, error)
	// SubscriptionList returns every subscription by name, with its lag
	// counted.
	SubscriptionList(ctx context.Context) ([]*SubscriptionRow, error)
	// SubscriptionSet moves a checkpoint unconditionally; false when the
	// subscription does not exist.
	SubscriptionSet(ctx context.Context, p *SubscriptionSetParams) (bool, error)
	// SubscriptionDelete removes a subscription and its parked events;
	// false when it did not exist.
	SubscriptionDelete(ctx context.Context, p *SubscriptionGetParams) (bool, error)
	// SubscriptionHead returns the last event the subscription's filter
	// selects (committed, readable or not), or nil when there is none.
	SubscriptionHead(ctx context.Context, p *SubscriptionHeadParams) (*Position, error)
	// HorizonGet returns the commit horizon: events of transactions below
	// Xmin are readable; Xmax is the next transaction id.
	HorizonGet(ctx context.Context) (*Horizon, error)
	// HorizonHolders lists the sessions that hold the horizon back, oldest
	// first: those with a transaction id older than p.OlderThan.
	HorizonHolders(ctx context.Context, p *HorizonHoldersParams) ([]*HorizonHolder, error)

	// ParkedInsert parks events (or updates a parked event's error,
	// attempts and replay flag).
	ParkedInsert(ctx context.Context, p *ParkedInsertParams) error
	// ParkedList returns parked events of a subscription in position
	// order; only those marked for replay when p.ReplayOnly.
	ParkedList(ctx context.Context, p *ParkedListParams) ([]*ParkedRow, error)
	// ParkedDelete removes one parked event; false when it was not there.
	ParkedDelete(ctx context.Context, p *ParkedDeleteParams) (bool, error)
	// ParkedMarkReplay marks parked events for replay: all of the
	// subscription's when EventIDs is empty. It returns how many.
	ParkedMarkReplay(ctx context.Context, p *ParkedMarkReplayParams) (int64, error)
	// EventGet returns events by id, in (transaction_id, id) order.
	EventGet(ctx context.Context, p *EventGetParams) ([]*EventRow, error)
}

// SubscriptionLocker is implemented by drivers that can make one worker
// the owner of a subscription across processes. Without it, package meowmx
// locks within the process only (and the fenced checkpoint keeps handlers
// exactly-once regardless).
type SubscriptionLocker interface {
	// SubscriptionLock returns the lock of one subscription, not yet taken.
	SubscriptionLock(name string) SubscriptionLock
}

// SubscriptionLock is one worker's handle on a subscription's lock. It is
// used by one goroutine at a time.
type SubscriptionLock interface {
	// TryLock takes the lock if no other session holds it, without
	// waiting; false when another does.
	TryLock(ctx context.Context) (bool, error)
	// Check returns an error when the held lock may have been lost (its
	// connection dropped).
	Check(ctx context.Context) error
	// Close releases the lock, if held, and what it holds. The lock is also
	// released when the process or its connection dies.
	Close(ctx context.Context) error
}

// ListenerDriver is implemented by drivers that can wake subscribers in
// other processes. Listener returns nil when that is switched off.
type ListenerDriver interface {
	Listener() Listener
}

// Listener is implemented by drivers that can wake subscribers in other
// processes (PostgreSQL LISTEN/NOTIFY).
type Listener interface {
	// Listen opens one connection and calls fn for every notification with
	// the transaction id it announces (0: unknown, call fn(0) right after
	// connecting as notifications may have been missed). It returns when
	// ctx ends or the connection fails.
	Listen(ctx context.Context, fn func(txID uint64)) error
	// Notify announces that events of transaction txID have committed.
	Notify(ctx context.Context, txID uint64) error
}

// Position is a place in the global order.
type Position struct {
	TransactionID uint64
	EventID       int64
}

// SubscriptionRow is one row of es_event_subscriptions.
type SubscriptionRow struct {
	Name           string
	Last           Position
	AggregateTypes []string // nil: all, or unknown (never run by Go)
	EventTypes     []string
	// Lag counts the committed events after Last that the filter selects;
	// Waiting counts those of them not yet readable (above the horizon).
	// Filled by SubscriptionList only.
	Lag, Waiting int64
	// Parked counts the parked events. Filled by SubscriptionList only.
	Parked int64
}

// SubscriptionCreateParams are the inputs of SubscriptionCreate. When
// AtHead is true the position is the last readable event that the filter
// selects (or the beginning), not At.
type SubscriptionCreateParams struct {
	Name           string
	At             Position
	AtHead         bool
	AggregateTypes []string
	EventTypes     []string
}

// SubscriptionGetParams name one subscription.
type SubscriptionGetParams struct {
	Name string
}

// SubscriptionAdvanceParams are the inputs of ExecutorTx.CommitAdvance. Async
// lets the transaction's commit return before it is flushed to disk
// (PostgreSQL: synchronous_commit off for that transaction).
type SubscriptionAdvanceParams struct {
	Name     string
	From, To Position
	Async    bool
}

// SubscriptionSetParams are the inputs of SubscriptionSet: the checkpoint
// moves to To unless it is nil; the filter is stored when SetFilter.
type SubscriptionSetParams struct {
	Name           string
	To             *Position
	SetFilter      bool
	AggregateTypes []string
	EventTypes     []string
}

// SubscriptionHeadParams are the inputs of SubscriptionHead.
type SubscriptionHeadParams struct {
	AggregateTypes []string
	EventTypes     []string
}

// Horizon is the commit horizon.
type Horizon struct {
	Xmin, Xmax uint64
}

// HorizonHoldersParams are the inputs of HorizonHolders.
type HorizonHoldersParams struct {
	OlderThan time.Duration
	Limit     int
}

// HorizonHolder is a session whose open transaction holds the horizon back.
type HorizonHolder struct {
	PID             int32
	State           string
	Application     string
	TransactionID   uint64
	TransactionFrom time.Time
	Age             time.Duration
	Query           string
}

// ParkedRow is one parked event.
type ParkedRow struct {
	Subscription string
	Event        Position
	AggregateID  string
	Error        string
	Attempts     int
	ParkedAt     time.Time
	Replay       bool
}

// ParkedInsertParams are the inputs of ParkedInsert.
type ParkedInsertParams struct {
	Rows []*ParkedRow
}

// ParkedListParams are the inputs of ParkedList.
type ParkedListParams struct {
	Subscription string
	ReplayOnly   bool
	Limit        int
}

// ParkedDeleteParams are the inputs of ParkedDelete.
type ParkedDeleteParams struct {
	Subscription string
	Event        Position
}

// ParkedMarkReplayParams are the inputs of ParkedMarkReplay.
type ParkedMarkReplayParams struct {
	Subscription string
	EventIDs     []int64
}

// EventGetParams are the inputs of EventGet.
type EventGetParams struct {
	IDs []int64
}
