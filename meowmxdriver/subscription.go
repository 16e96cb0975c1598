package meowmxdriver

import (
	"context"
	"time"

	"github.com/meowmx/meowmx/meowmxtype"
)

// SubscriptionExecutor stores subscription checkpoints and parked events.
//
// A driver without a commit horizon (SQLite) implements them with plain
// statements: HorizonGet returns a zero Horizon (no horizon, nothing can be
// ahead) and HorizonHolders nil. The fencing of
// ExecutorTx.SubscriptionCommit (and of ParkedDelete for replays) is what
// makes a handler's writes exactly-once, whatever the locking.
type SubscriptionExecutor interface {
	// SubscriptionEnsure creates a subscription, or stores the filter of
	// an existing one, and returns its row as stored, in one statement.
	// The position in p applies to a new subscription only: an existing
	// checkpoint never moves. Lag, Waiting and Parked are left zero; the
	// rows of every method fill Partitions, Group and Partition in.
	SubscriptionEnsure(ctx context.Context, p *SubscriptionEnsureParams) (*meowmxtype.SubscriptionInfo, error)
	// SubscriptionGet returns one subscription, or ErrNotFound. Lag,
	// Waiting and Parked are left zero.
	SubscriptionGet(ctx context.Context, p *SubscriptionGetParams) (*meowmxtype.SubscriptionInfo, error)
	// SubscriptionList returns every subscription by name, with Lag,
	// Waiting, Parked and OldestUnhandled filled in. It counts at most
	// p.LagCap events behind each checkpoint: beyond that, Lag is an
	// estimate and LagEstimated is set, so that the cost does not grow
	// with the lag.
	SubscriptionList(ctx context.Context, p *SubscriptionListParams) ([]*meowmxtype.SubscriptionInfo, error)
	// SubscriptionSet moves a checkpoint unconditionally; false when the
	// subscription does not exist.
	SubscriptionSet(ctx context.Context, p *SubscriptionSetParams) (bool, error)
	// SubscriptionLease takes or renews p.Owner's lease of a
	// subscription, until p.TTL from now by the database's clock: when the
	// subscription has no owner, its owner's lease has passed, or p.Owner
	// holds it already. With p.Progress it also records that the owner
	// made progress. Held is false, with the holder, when another owner's
	// lease holds; ErrNotFound when the subscription does not exist. Either
	// way p.Owner is recorded among the subscription's workers until p.TTL
	// from now.
	SubscriptionLease(ctx context.Context, p *SubscriptionLeaseParams) (*SubscriptionLeaseResult, error)
	// SubscriptionJoin records p.Owner among the workers of the
	// subscription p.Name until p.TTL from now, by the database's clock,
	// and returns the workers recorded whose time has not passed, p.Owner
	// included, in any order: the members of a consumer group. ErrNotFound when
	// the subscription does not exist. SubscriptionRelease removes the
	// worker again.
	SubscriptionJoin(ctx context.Context, p *SubscriptionJoinParams) ([]meowmxtype.SubscriptionOwner, error)
	// SubscriptionRelease ends p.Owner's lease, when it holds it, and
	// removes it from the subscription's workers.
	SubscriptionRelease(ctx context.Context, p *SubscriptionReleaseParams) error
	// SubscriptionDelete removes a subscription and its parked events,
	// and a consumer group's partitions with theirs; false when it did not
	// exist.
	SubscriptionDelete(ctx context.Context, p *SubscriptionDeleteParams) (bool, error)
	// SubscriptionHead returns the last event the subscription's filter
	// selects (committed, readable or not), or nil when there is none.
	SubscriptionHead(ctx context.Context, p *SubscriptionHeadParams) (*meowmxtype.Position, error)
	// HorizonGet returns the commit horizon: events of transactions below
	// Xmin are readable; Xmax is the next transaction id.
	HorizonGet(ctx context.Context) (*Horizon, error)
	// HorizonHolders lists the sessions that hold the horizon back, oldest
	// first: those with a transaction id older than p.OlderThan.
	HorizonHolders(ctx context.Context, p *HorizonHoldersParams) ([]*meowmxtype.HorizonHolder, error)

	// ParkedInsert parks events (or updates a parked event's error,
	// attempts and replay flag; see ParkedRow.Mark).
	ParkedInsert(ctx context.Context, p *ParkedInsertParams) error
	// ParkedList returns parked events of a subscription in position
	// order; only those marked for replay when p.ReplayOnly.
	ParkedList(ctx context.Context, p *ParkedListParams) ([]*ParkedRow, error)
	// ParkedDelete removes one parked event; false when it was not there.
	ParkedDelete(ctx context.Context, p *ParkedDeleteParams) (bool, error)
	// ParkedMarkReplay marks parked events for replay: all of the
	// subscription's when EventIDs is empty. It returns how many. Each
	// marked row's Mark changes, even when it was marked already.
	ParkedMarkReplay(ctx context.Context, p *ParkedMarkReplayParams) (int64, error)
}

// Listener wakes subscribers in other processes (PostgreSQL LISTEN/NOTIFY,
// SQLite's probe; see Capabilities). A listener that cannot carry
// transaction ids calls fn(0) for every wake-up.
type Listener interface {
	// Listen opens one connection and calls fn for every notification with
	// the transaction id it announces (0: unknown, call fn(0) right after
	// connecting as notifications may have been missed). It returns when
	// ctx ends or the connection fails.
	Listen(ctx context.Context, fn func(txID uint64)) error
	// Notify announces that events of transaction txID have committed.
	Notify(ctx context.Context, txID uint64) error
}

// SubscriptionEnsureParams are the inputs of SubscriptionEnsure. A new
// subscription starts after At or, when AtHead is true, after the last
// readable event (or at the beginning when there is none). The filter,
// AggregateTypes and EventTypes (empty: no filter), is stored whether the
// subscription is new or not.
//
// Partitions above 1 makes a new subscription a consumer group: its row
// (Partitions set) and one row per partition (named
// meowmxtype.PartitionName, with Group, Partition and Partitions set),
// all at the same start. An existing subscription keeps its partitions:
// when they differ from p.Partitions, SubscriptionEnsure changes nothing
// and returns the row as stored, for the caller to refuse.
type SubscriptionEnsureParams struct {
	Name           string
	At             meowmxtype.Position
	AtHead         bool
	AggregateTypes []string
	EventTypes     []string
	Partitions     int
}

// SubscriptionJoinParams are the inputs of SubscriptionJoin.
type SubscriptionJoinParams struct {
	Name  string
	Owner meowmxtype.SubscriptionOwner
	TTL   time.Duration
}

// SubscriptionListParams are the inputs of SubscriptionList.
type SubscriptionListParams struct {
	LagCap int
}

// SubscriptionGetParams are the inputs of SubscriptionGet.
type SubscriptionGetParams struct {
	Name string
}

// SubscriptionDeleteParams are the inputs of SubscriptionDelete.
type SubscriptionDeleteParams struct {
	Name string
}

// SubscriptionCommitParams are the inputs of ExecutorTx.SubscriptionCommit.
// Async lets the transaction's commit return before it is flushed to disk
// (PostgreSQL: synchronous_commit off for that transaction). When Owner is
// set, the commit is fenced on Owner holding the lease too, and renews it
// for TTL and records progress.
type SubscriptionCommitParams struct {
	Name     string
	From, To meowmxtype.Position
	Async    bool
	Owner    string
	TTL      time.Duration
}

// SubscriptionLeaseParams are the inputs of SubscriptionLease.
type SubscriptionLeaseParams struct {
	Name     string
	Owner    meowmxtype.SubscriptionOwner
	TTL      time.Duration
	Progress bool
}

// SubscriptionLeaseResult is the outcome of SubscriptionLease.
type SubscriptionLeaseResult struct {
	// Held is true when p.Owner holds the lease now.
	Held bool
	// Holder is the owner whose lease holds: p.Owner when Held.
	Holder meowmxtype.SubscriptionOwner
	// Position is the subscription's checkpoint, when Held.
	Position meowmxtype.Position
	// SinceProgress is how long ago the holder last made progress (-1:
	// never), by the database's clock.
	SinceProgress time.Duration
}

// SubscriptionReleaseParams are the inputs of SubscriptionRelease.
type SubscriptionReleaseParams struct {
	Name  string
	Owner string
}

// SubscriptionSetParams are the inputs of SubscriptionSet: the checkpoint
// moves to To unless it is nil; the filter is stored when SetFilter.
type SubscriptionSetParams struct {
	Name           string
	To             *meowmxtype.Position
	SetFilter      bool
	AggregateTypes []string
	EventTypes     []string
}

// SubscriptionHeadParams are the inputs of SubscriptionHead. Partitions
// above 1 selects the events of one partition, as in EventReadAllParams.
type SubscriptionHeadParams struct {
	AggregateTypes []string
	EventTypes     []string
	Partition      int
	Partitions     int
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

// ParkedRow is one parked event.
type ParkedRow struct {
	Subscription string
	Event        meowmxtype.Position
	AggregateID  string
	Error        string
	Attempts     int
	ParkedAt     time.Time
	Replay       bool
	// Mark is a version of the row's replay mark, read by ParkedList: it
	// changes whenever the row is marked for replay (PostgreSQL: the row's
	// xmin; SQLite: a count in the replay column). In ParkedInsert, a row
	// with Mark not zero that is stored already gets its error and attempts
	// updated, and its replay mark cleared only when it is still at Mark:
	// a replay requested since the row was listed stays requested. With
	// Mark zero the mark is cleared.
	Mark int64
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
	Event        meowmxtype.Position
}

// ParkedMarkReplayParams are the inputs of ParkedMarkReplay.
type ParkedMarkReplayParams struct {
	Subscription string
	EventIDs     []int64
}
