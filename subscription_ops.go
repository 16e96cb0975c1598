package meowmx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// SubscriptionInfo describes a subscription, as Store.Subscriptions lists
// it.
type SubscriptionInfo = meowmxtype.SubscriptionInfo

// SubscriptionOwner identifies the worker that owns a subscription.
type SubscriptionOwner = meowmxtype.SubscriptionOwner

// SubscriptionState is what a subscription's workers are doing, as far as
// the database tells: SubscriptionRunning, SubscriptionStalled,
// SubscriptionStandingBy or SubscriptionStopped.
type SubscriptionState = meowmxtype.SubscriptionState

// States of a subscription, in SubscriptionInfo.State.
const (
	// SubscriptionRunning: a worker holds the lease and keeps up.
	SubscriptionRunning = meowmxtype.SubscriptionRunning
	// SubscriptionStalled: a worker holds the lease while events wait,
	// and has made no progress for longer than StalledAfter.
	SubscriptionStalled = meowmxtype.SubscriptionStalled
	// SubscriptionStandingBy: no worker holds the lease, and workers stand
	// by to take it.
	SubscriptionStandingBy = meowmxtype.SubscriptionStandingBy
	// SubscriptionStopped: no worker runs the subscription.
	SubscriptionStopped = meowmxtype.SubscriptionStopped
)

// StalledAfter is how long an owner may go without progress while events
// wait before Store.Subscriptions calls its subscription stalled.
const StalledAfter = 30 * time.Second

// LagCountMax is how many events behind its checkpoint a subscription's
// lag counts exactly (SubscriptionInfo.Lag); more are estimated.
const LagCountMax = meowmxtype.LagCountMax

// HorizonHolder is a database session whose open transaction holds the
// commit horizon back: events committed after its transaction started are
// not delivered to subscribers until it ends.
type HorizonHolder = meowmxtype.HorizonHolder

// Subscriptions lists the subscriptions by name, with their position, lag
// and what holds them back. Counting the lag reads the events after each
// checkpoint: it is meant for operations, not for a hot path.
func (s *Store[TTx]) Subscriptions(ctx context.Context) ([]*SubscriptionInfo, error) {
	ex := s.driver.Executor()
	rows, err := ex.SubscriptionList(ctx, &meowmxdriver.SubscriptionListParams{LagCap: meowmxtype.LagCountMax})
	if err != nil {
		return nil, fmt.Errorf("meowmx: list subscriptions: %w", err)
	}
	h, err := ex.HorizonGet(ctx)
	if err != nil {
		return nil, fmt.Errorf("meowmx: list subscriptions: %w", err)
	}
	var holders []*HorizonHolder
	for _, info := range rows {
		info.Ahead = h.Xmax != 0 && info.Position.TransactionID >= h.Xmax
		switch {
		case info.Owner == nil && len(info.Standbys) > 0:
			info.State = SubscriptionStandingBy
		case info.Owner == nil:
			info.State = SubscriptionStopped
		case info.Lag > 0 && info.SinceProgress > StalledAfter:
			info.State = SubscriptionStalled
		default:
			info.State = SubscriptionRunning
		}
		if info.Waiting > 0 {
			if holders == nil {
				if holders, err = s.horizonHolders(ctx, 0); err != nil {
					return nil, err
				}
			}
			info.HorizonHeldBy = holders
		}
	}
	return nestPartitions(rows), nil
}

// nestPartitions moves the partitions of consumer groups from the list
// into their group's PartitionInfos, and sums them up in the group.
func nestPartitions(rows []*SubscriptionInfo) []*SubscriptionInfo {
	groups := map[string]*SubscriptionInfo{}
	for _, info := range rows {
		if info.Partitions > 0 && info.Group == "" {
			info.PartitionInfos = make([]*SubscriptionInfo, info.Partitions)
			info.Members, info.Standbys = info.Standbys, nil
			groups[info.Name] = info
		}
	}
	out := rows[:0]
	for _, info := range rows {
		g := groups[info.Group]
		switch {
		case info.Group == "":
			out = append(out, info)
		case g != nil && info.Partition >= 0 && info.Partition < len(g.PartitionInfos):
			g.PartitionInfos[info.Partition] = info
		}
	}
	for _, g := range groups {
		sumPartitions(g)
	}
	return out
}

// sumPartitions sums a group's partitions up in the group's info.
func sumPartitions(g *SubscriptionInfo) {
	g.Lag, g.LagEstimated, g.Waiting, g.Parked, g.SinceProgress = 0, false, 0, 0, -1
	owned, stalled, first := 0, false, true
	for _, p := range g.PartitionInfos {
		if p == nil {
			continue
		}
		if first || p.Position.Compare(g.Position) < 0 {
			g.Position, first = p.Position, false
		}
		g.Lag += p.Lag
		g.LagEstimated = g.LagEstimated || p.LagEstimated
		g.Waiting += p.Waiting
		g.Parked += p.Parked
		g.Ahead = g.Ahead || p.Ahead
		if g.HorizonHeldBy == nil {
			g.HorizonHeldBy = p.HorizonHeldBy
		}
		if !p.OldestUnhandled.IsZero() && (g.OldestUnhandled.IsZero() || p.OldestUnhandled.Before(g.OldestUnhandled)) {
			g.OldestUnhandled = p.OldestUnhandled
		}
		g.SinceProgress = max(g.SinceProgress, p.SinceProgress)
		if p.Owner != nil {
			owned++
		}
		stalled = stalled || p.State == SubscriptionStalled
	}
	switch {
	case stalled:
		g.State = SubscriptionStalled
	case owned == g.Partitions:
		g.State = SubscriptionRunning
	case len(g.Members) > 0:
		g.State = SubscriptionStandingBy
	default:
		g.State = SubscriptionStopped
	}
}

// rowNames returns the names of the rows a subscription is made of: its
// own, or a consumer group's partitions'. ErrSubscriptionNotFound when it
// does not exist.
func (s *Store[TTx]) rowNames(ctx context.Context, name string) ([]string, error) {
	row, err := s.driver.Executor().SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: name})
	switch {
	case errors.Is(err, meowmxdriver.ErrNotFound):
		return nil, fmt.Errorf("%w: %q", ErrSubscriptionNotFound, name)
	case err != nil:
		return nil, err
	case row.Partitions == 0 || row.Group != "":
		return []string{name}, nil
	}
	names := make([]string, row.Partitions)
	for p := range names {
		names[p] = PartitionName(name, p)
	}
	return names, nil
}

// HorizonHolders lists the sessions whose open transactions have held the
// commit horizon back for at least olderThan, oldest first (at most 10).
// On PostgreSQL, only transactions that have written (that have a
// transaction id) hold it back; a read-only transaction does not.
func (s *Store[TTx]) HorizonHolders(ctx context.Context, olderThan time.Duration) ([]*HorizonHolder, error) {
	return s.horizonHolders(ctx, olderThan)
}

func (s *Store[TTx]) horizonHolders(ctx context.Context, olderThan time.Duration) ([]*HorizonHolder, error) {
	hs, err := s.driver.Executor().HorizonHolders(ctx, &meowmxdriver.HorizonHoldersParams{OlderThan: olderThan, Limit: 10})
	if err != nil {
		return nil, fmt.Errorf("meowmx: horizon holders: %w", err)
	}
	return hs, nil
}

// ResetSubscription moves a subscription's checkpoint to a position,
// backward (to handle events again) or forward (to skip them): the next
// event handled is the first after pos. A running owner picks the new
// checkpoint up at once, rolling back a transaction in progress. Parked
// events stay parked. A consumer group's partitions all move; a
// partition (PartitionName) moves alone. A position after the last event
// of the database is refused (an error matching ErrInvalidArgument). It
// returns an error matching ErrSubscriptionNotFound when the subscription
// does not exist.
func (s *Store[TTx]) ResetSubscription(ctx context.Context, name string, pos Position) error {
	if err := checkName("subscription name", name); err != nil {
		return err
	}
	if pos.EventID < 0 {
		return &ArgumentError{Arg: "position", Reason: "negative event id"}
	}
	names, err := s.rowNames(ctx, name)
	switch {
	case errors.Is(err, ErrSubscriptionNotFound):
		return err
	case err != nil:
		return fmt.Errorf("meowmx: reset subscription %q: %w", name, err)
	}
	if err := s.checkNotAhead(ctx, pos); err != nil {
		return err
	}
	if len(names) > 1 {
		names = append(names, name) // the group's own row, for the record
	}
	for _, n := range names {
		ok, err := s.driver.Executor().SubscriptionSet(ctx, &meowmxdriver.SubscriptionSetParams{Name: n, To: &pos})
		if err != nil {
			return fmt.Errorf("meowmx: reset subscription %q: %w", n, err)
		}
		if !ok {
			return fmt.Errorf("%w: %q", ErrSubscriptionNotFound, n)
		}
	}
	_ = s.hub.Announce(ctx) // the owner would see it at its next poll anyway
	return nil
}

// checkNotAhead refuses a position after the last event of the database:
// a subscription reset there would wait for events that, on PostgreSQL,
// may never come (a transaction id the database has not reached).
func (s *Store[TTx]) checkNotAhead(ctx context.Context, pos Position) error {
	if pos == (Position{}) {
		return nil
	}
	head, err := s.driver.Executor().SubscriptionHead(ctx, &meowmxdriver.SubscriptionHeadParams{})
	if err != nil {
		return fmt.Errorf("meowmx: reset subscription: %w", err)
	}
	if head == nil || pos.Compare(*head) > 0 {
		last := "there are no events"
		if head != nil {
			last = "the last event is at " + head.String()
		}
		return &ArgumentError{Arg: "position", Reason: fmt.Sprintf("%s is after the last event of the database (%s)", pos, last)}
	}
	return nil
}

// DeleteSubscription deletes a subscription, its checkpoint and its parked
// events; a consumer group with its partitions (a partition alone is
// refused). Workers running it stop with an error matching
// ErrSubscriptionNotFound; run it again to start it anew. It returns an
// error matching ErrSubscriptionNotFound when it does not exist.
func (s *Store[TTx]) DeleteSubscription(ctx context.Context, name string) error {
	if err := checkName("subscription name", name); err != nil {
		return err
	}
	row, err := s.driver.Executor().SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: name})
	switch {
	case errors.Is(err, meowmxdriver.ErrNotFound):
		return fmt.Errorf("%w: %q", ErrSubscriptionNotFound, name)
	case err != nil:
		return fmt.Errorf("meowmx: delete subscription %q: %w", name, err)
	case row.Group != "":
		return &ArgumentError{Arg: "name", Reason: fmt.Sprintf("%q is a partition of consumer group %q: delete the group", name, row.Group)}
	}
	ok, err := s.driver.Executor().SubscriptionDelete(ctx, &meowmxdriver.SubscriptionDeleteParams{Name: name})
	if err != nil {
		return fmt.Errorf("meowmx: delete subscription %q: %w", name, err)
	}
	if !ok {
		return fmt.Errorf("%w: %q", ErrSubscriptionNotFound, name)
	}
	_ = s.hub.Announce(ctx)
	return nil
}

// WaitForSubscription waits until a subscription has caught up with the
// head: its checkpoint is at or after the last event, committed before the
// call, that its filter selects, and no parked event waits for replay; for
// a consumer group, each of its partitions has. A subscription that does
// not exist yet is waited for. It is meant for tests and deployments; it
// returns ctx's error when ctx ends first.
func (s *Store[TTx]) WaitForSubscription(ctx context.Context, name string) error {
	if err := checkName("subscription name", name); err != nil {
		return err
	}
	if err := s.waitFor(ctx, name); err != nil {
		return fmt.Errorf("meowmx: wait for subscription %q: %w", name, err)
	}
	return nil
}

// waitFor waits for one subscription row, or for each of a group's
// partitions.
func (s *Store[TTx]) waitFor(ctx context.Context, name string) error {
	ex := s.driver.Executor()
	var head *Position
	delay := time.Millisecond
	for {
		row, err := ex.SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: name})
		switch {
		case errors.Is(err, meowmxdriver.ErrNotFound):
		case err != nil:
			return err
		case row.Partitions > 0 && row.Group == "":
			for p := range row.Partitions {
				if err := s.waitFor(ctx, PartitionName(name, p)); err != nil {
					return err
				}
			}
			return nil
		default:
			if head == nil {
				p, err := ex.SubscriptionHead(ctx, &meowmxdriver.SubscriptionHeadParams{
					AggregateTypes: row.AggregateTypes, EventTypes: row.EventTypes,
					Partition: row.Partition, Partitions: row.Partitions})
				if err != nil {
					return err
				}
				head = &Position{}
				if p != nil {
					head = p
				}
			}
			if row.Position.Compare(*head) >= 0 {
				pending, err := ex.ParkedList(ctx, &meowmxdriver.ParkedListParams{Subscription: name, ReplayOnly: true, Limit: 1})
				if err != nil {
					return err
				}
				if len(pending) == 0 {
					return nil
				}
			}
		}
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// ParkedEvent is an event parked by a subscription.
type ParkedEvent struct {
	// Event is the parked event.
	Event *RecordedEvent
	// Error is the handler's last error, or why the event waits (behind
	// another parked event of its stream).
	Error string
	// Attempts counts the handler's attempts on it.
	Attempts int
	ParkedAt time.Time
	// Replay is set while it waits to be replayed.
	Replay bool
}

// ParkedEvents lists a subscription's parked events, in global order: a
// consumer group's, of all its partitions. It returns an error matching
// ErrSubscriptionNotFound when the subscription does not exist.
func (s *Store[TTx]) ParkedEvents(ctx context.Context, name string) ([]*ParkedEvent, error) {
	if err := checkName("subscription name", name); err != nil {
		return nil, err
	}
	ex := s.driver.Executor()
	names, err := s.rowNames(ctx, name)
	switch {
	case errors.Is(err, ErrSubscriptionNotFound):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("meowmx: parked events of %q: %w", name, err)
	}
	var rows []*meowmxdriver.ParkedRow
	for _, n := range names {
		rs, err := ex.ParkedList(ctx, &meowmxdriver.ParkedListParams{Subscription: n})
		if err != nil {
			return nil, fmt.Errorf("meowmx: parked events of %q: %w", n, err)
		}
		rows = append(rows, rs...)
	}
	if len(names) > 1 {
		slices.SortFunc(rows, func(a, b *meowmxdriver.ParkedRow) int { return a.Event.Compare(b.Event) })
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.Event.EventID
	}
	evs, err := ex.EventGet(ctx, &meowmxdriver.EventGetParams{IDs: ids})
	if err != nil {
		return nil, fmt.Errorf("meowmx: parked events of %q: %w", name, err)
	}
	byID := make(map[int64]*RecordedEvent, len(evs))
	for _, e := range evs {
		byID[e.Position.EventID] = e
	}
	out := make([]*ParkedEvent, 0, len(rows))
	for _, r := range rows {
		ev := byID[r.Event.EventID]
		if ev == nil { // deleted from es_events
			ev = &RecordedEvent{Position: r.Event, StreamID: StreamID{ID: r.AggregateID}}
		}
		out = append(out, &ParkedEvent{Event: ev, Error: r.Error, Attempts: r.Attempts, ParkedAt: r.ParkedAt, Replay: r.Replay})
	}
	return out, nil
}

// ReplayParkedOpts select parked events to replay. Nil replays them all.
type ReplayParkedOpts struct {
	// EventIDs, when not empty, replays these events only (by
	// Position.EventID).
	EventIDs []int64
}

// ReplayParked marks a subscription's parked events for replay and returns
// how many it marked. The worker that owns the subscription hands them to
// the handler again, in global order, before new events; those that
// succeed leave the parked list, those that fail again stay with their new
// error. Unless SubscriptionConfig.PassParked, an event is replayed only
// once the parked events before it in its stream have been, so that replay
// restores each stream's order. WaitForSubscription waits for the replay.
// A consumer group's parked events are replayed in every partition. It
// returns an error matching ErrSubscriptionNotFound when the subscription
// does not exist.
func (s *Store[TTx]) ReplayParked(ctx context.Context, name string, opts *ReplayParkedOpts) (int, error) {
	if err := checkName("subscription name", name); err != nil {
		return 0, err
	}
	names, err := s.rowNames(ctx, name)
	switch {
	case errors.Is(err, ErrSubscriptionNotFound):
		return 0, err
	case err != nil:
		return 0, fmt.Errorf("meowmx: replay parked events of %q: %w", name, err)
	}
	var marked int64
	for _, n := range names {
		p := &meowmxdriver.ParkedMarkReplayParams{Subscription: n}
		if opts != nil {
			p.EventIDs = opts.EventIDs
		}
		k, err := s.driver.Executor().ParkedMarkReplay(ctx, p)
		if err != nil {
			return 0, fmt.Errorf("meowmx: replay parked events of %q: %w", n, err)
		}
		marked += k
	}
	_ = s.hub.Announce(ctx)
	return int(marked), nil
}
