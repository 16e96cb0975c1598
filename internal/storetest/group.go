package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxdriver"
)

func runGroups[TTx any](t *testing.T, b Backend[TTx]) {
	t.Run("GroupShare", func(t *testing.T) { t.Parallel(); testGroupShare(t, b) })
	t.Run("GroupPartitionsFixed", func(t *testing.T) { t.Parallel(); testGroupPartitionsFixed(t, b) })
	t.Run("GroupOps", func(t *testing.T) { t.Parallel(); testGroupOps(t, b) })
	t.Run("GroupReadPartition", func(t *testing.T) { t.Parallel(); testGroupReadPartition(t, b) })
}

// testGroupReadPartition: the driver's read of a partition returns the
// events whose stream PartitionOf puts in it, all of them, in order.
func testGroupReadPartition[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	ids := []string{"", "a", "ünïcødé 猫", "with space", "0b3c5d6e-1f2a-4b5c-8d9e-0f1a2b3c4d5e"}
	for i := range 60 {
		ids = append(ids, fmt.Sprint("p", i))
	}
	for _, id := range ids[1:] {
		_, err := s.Append(ctx, cat(id), meowmx.AnyVersion, ev("Born", `{}`), ev("Grown", `{}`))
		require.NoError(t, err)
	}
	all := allOf(t, s, "cat")
	for _, n := range []int{2, 7} {
		var union []*meowmx.RecordedEvent
		for p := range n {
			got, err := s.Driver().Executor().EventReadAll(ctx, &meowmxdriver.EventReadAllParams{
				AggregateTypes: []string{"cat"}, Partition: p, Partitions: n, Limit: 1000})
			require.NoError(t, err)
			for i, e := range got {
				require.Equal(t, meowmx.PartitionOf(e.StreamID.ID, n), p, "%s read in partition %d of %d", e.StreamID, p, n)
				if i > 0 {
					require.Negative(t, got[i-1].Position.Compare(e.Position), "in order")
				}
			}
			union = append(union, got...)
		}
		require.Len(t, union, len(all), "every event is in one partition of %d", n)
	}
}

// exclusive checks that no two handler calls for one partition overlap,
// and records the partition each event was handled in.
type exclusive struct {
	mu     sync.Mutex
	active map[int]int
	where  map[string]int // event position → partition
	twice  []string
}

func newExclusive() *exclusive { return &exclusive{active: map[int]int{}, where: map[string]int{}} }

func (x *exclusive) enter(p int, ev *meowmx.RecordedEvent) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.active[p]++
	if x.active[p] > 1 {
		x.twice = append(x.twice, fmt.Sprintf("partition %d busy twice at %s", p, ev.Position))
	}
	x.where[ev.Position.String()] = p
}

func (x *exclusive) leave(p int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.active[p]--
}

// groupHandler is ledgerHandler checked by x, waiting d per event.
func groupHandler[TTx any](s *meowmx.Store[TTx], sub string, partitions int, x *exclusive, d time.Duration) meowmx.HandlerFunc[TTx] {
	ledger := ledgerHandler(s, sub)
	return func(ctx context.Context, tx TTx, ev *meowmx.RecordedEvent) error {
		p := meowmx.PartitionOf(ev.StreamID.ID, partitions)
		x.enter(p, ev)
		defer x.leave(p)
		time.Sleep(d)
		return ledger(ctx, tx, ev)
	}
}

func groupConfig[TTx any](name string, partitions int, h meowmx.Handler[TTx]) *meowmx.SubscriptionConfig[TTx] {
	return &meowmx.SubscriptionConfig[TTx]{Name: name, Partitions: partitions, AggregateTypes: []string{"cat", "dog", "bird"},
		Handler: h, BatchSize: 20, CheckpointEvery: 5,
		LockInterval: 100 * time.Millisecond, LeaseTimeout: 5 * time.Second, PollInterval: 20 * time.Millisecond}
}

// ownersOf returns how many partitions of group each member owns, and the
// group's listing; nil when it is not listed.
func ownersOf[TTx any](t *testing.T, s *meowmx.Store[TTx], group string) (map[string]int, *meowmx.SubscriptionInfo) {
	t.Helper()
	subs, err := s.Subscriptions(context.Background())
	require.NoError(t, err)
	for _, sub := range subs {
		if sub.Name != group {
			continue
		}
		owners := map[string]int{}
		for _, p := range sub.PartitionInfos {
			if p != nil && p.Owner != nil {
				owners[p.Owner.ID]++
			}
		}
		return owners, sub
	}
	return nil, nil // not created yet
}

// balanced tells whether members members own all of partitions between
// them, each ⌊N/W⌋ or ⌈N/W⌉.
func balanced(owners map[string]int, members, partitions int) bool {
	if len(owners) != members {
		return false
	}
	total := 0
	for _, n := range owners {
		if n != partitions/members && n != (partitions+members-1)/members {
			return false
		}
		total += n
	}
	return total == partitions
}

// testGroupShare runs a consumer group of 8 partitions while 8 writers
// commit out of order: one member first, two more on other stores (other
// processes, as far as the database can tell) that take their share
// without anyone leaving, then one leaves and one more joins. Every event
// is handled exactly once, each stream in order, each partition by one
// worker at a time and only in its partition.
func testGroupShare[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	const partitions = 8
	x := newExclusive()
	member := func(st *meowmx.Store[TTx]) *running {
		c := groupConfig("g", partitions, groupHandler(st, "g", partitions, x, 0))
		if b.SharedFile {
			// Members' records must not lapse while their writes queue
			// on the file's lock (no member dies here).
			c.LeaseTimeout = time.Minute
		}
		return start(t, st, c)
	}

	var wg sync.WaitGroup
	const writers, txs = 8, 25
	errs := make(chan error, writers)
	types := []string{"cat", "dog", "bird"}
	write := func() {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range txs {
					if err := stressTx(ctx, s, types[(w+i)%3], fmt.Sprint("s", (w*txs+i)%24)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	members := []*running{member(s)}
	write()
	wantBalance := func(n int) {
		t.Helper()
		if b.SharedFile {
			return
		}
		var last string
		lister := b.Reopen(t, s)
		require.Eventually(t, func() bool {
			owners, g := ownersOf(t, lister, "g")
			if g != nil {
				last = fmt.Sprintf("owners %v, members %d, state %s", owners, len(g.Members), g.State)
			}
			return balanced(owners, n, partitions)
		}, 30*time.Second, 10*time.Millisecond, "%d members share the partitions evenly: %s", n, lazyString(func() string { return last }))
	}
	wantBalance(1)
	for range 2 {
		members = append(members, member(b.Reopen(t, s)))
	}
	wantBalance(3)
	require.NoError(t, members[1].stop())
	wantBalance(2)
	members = append(members, member(b.Reopen(t, s)))
	wantBalance(3)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	wait(t, s, "g")
	evs := allOf(t, s, types...)
	require.Len(t, evs, writers*txs*2)
	checkOnceInOrder(t, evs, ledger(t, s, "g"))
	x.mu.Lock()
	require.Empty(t, x.twice)
	x.mu.Unlock()

	_, g := ownersOf(t, s, "g")
	require.Equal(t, partitions, g.Partitions)
	if b.SharedFile {
		return
	}
	require.Len(t, g.Members, 3)
	require.Equal(t, int64(0), g.Lag)
	require.Equal(t, meowmx.SubscriptionRunning, g.State)
	require.Len(t, g.PartitionInfos, partitions)
	for p, info := range g.PartitionInfos {
		require.Equal(t, meowmx.PartitionName("g", p), info.Name)
		require.Equal(t, "g", info.Group)
		require.Equal(t, p, info.Partition)
		require.NotNil(t, info.Owner, "partition %d owned", p)
		require.Equal(t, int64(0), info.Lag)
	}
}

// testGroupPartitionsFixed: a group's partitions are set when it is
// created; another number, no partitions, or running a partition on its
// own is refused and changes nothing.
func testGroupPartitionsFixed[TTx any](t *testing.T, b Backend[TTx]) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := b.NewStore(t, nil)
	var rec recorder
	r := start(t, s, groupConfig("fixed", 4, meowmx.Handler[TTx](handlerOf[TTx](&rec))))
	wait(t, s, "fixed")
	require.NoError(t, r.stop())
	for _, c := range []*meowmx.SubscriptionConfig[TTx]{
		groupConfig("fixed", 8, meowmx.Handler[TTx](handlerOf[TTx](&rec))),
		groupConfig("fixed", 0, meowmx.Handler[TTx](handlerOf[TTx](&rec))),
		groupConfig(meowmx.PartitionName("fixed", 1), 0, meowmx.Handler[TTx](handlerOf[TTx](&rec))),
	} {
		err := s.RunSubscription(ctx, c)
		require.ErrorIs(t, err, meowmx.ErrPartitionsChanged, "%s with %d partitions", c.Name, c.Partitions)
	}
	_, g := ownersOf(t, s, "fixed")
	require.Equal(t, 4, g.Partitions)
	require.Len(t, g.PartitionInfos, 4)
	for _, p := range g.PartitionInfos {
		require.NotNil(t, p)
	}
	bad := groupConfig("toomany", meowmx.MaxPartitions+1, meowmx.Handler[TTx](handlerOf[TTx](&rec)))
	require.ErrorIs(t, s.RunSubscription(ctx, bad), meowmx.ErrInvalidArgument)
}

// lazyString is a message formatted when printed.
type lazyString func() string

func (f lazyString) String() string { return f() }

func handledCopy(mu *sync.Mutex, m map[string]int) lazyString {
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(m)
	}
}

// testGroupOps: parking, replay, reset and delete work on a group, and on
// its partitions.
func testGroupOps[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	const partitions = 4
	var mu sync.Mutex
	failing := true
	handled := map[string]int{}
	h := meowmx.HandlerFunc[TTx](func(_ context.Context, _ TTx, ev *meowmx.RecordedEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if failing && ev.StreamID.ID == "bad" {
			return fmt.Errorf("cannot handle %s", ev.StreamID)
		}
		handled[ev.Position.String()]++
		return nil
	})
	c := groupConfig("ops", partitions, meowmx.Handler[TTx](h))
	c.OnFailure, c.MaxAttempts, c.RetryBackoff = meowmx.FailurePark, 1, time.Millisecond
	start(t, s, c)
	for i := range 20 {
		_, err := s.Append(ctx, cat(fmt.Sprint("c", i)), meowmx.AnyVersion, ev("Born", `{}`))
		require.NoError(t, err)
	}
	_, err := s.Append(ctx, cat("bad"), meowmx.AnyVersion, ev("Born", `{}`), ev("Grown", `{}`))
	require.NoError(t, err)
	wait(t, s, "ops")

	parked, err := s.ParkedEvents(ctx, "ops")
	require.NoError(t, err)
	require.Len(t, parked, 2, "the failing event and the one behind it")
	bad := meowmx.PartitionName("ops", meowmx.PartitionOf("bad", partitions))
	inPartition, err := s.ParkedEvents(ctx, bad)
	require.NoError(t, err)
	require.Len(t, inPartition, 2, "parked in the stream's partition")
	_, g := ownersOf(t, s, "ops")
	require.Equal(t, int64(2), g.Parked)

	mu.Lock()
	failing = false
	mu.Unlock()
	n, err := s.ReplayParked(ctx, "ops", nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	wait(t, s, "ops")
	parked, err = s.ParkedEvents(ctx, "ops")
	require.NoError(t, err)
	require.Empty(t, parked)

	// Reset the whole group to the start: every event is handled again.
	// (Before, events handled before the failing one in its transaction
	// were handed over again: effects outside the transaction are
	// at-least-once.)
	mu.Lock()
	clear(handled)
	mu.Unlock()
	require.NoError(t, s.ResetSubscription(ctx, "ops", meowmx.Position{}))
	wait(t, s, "ops")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range handled {
			if k != 1 {
				return false
			}
		}
		return len(handled) == 22
	}, 30*time.Second, 10*time.Millisecond, "every event handled again after the reset: %s", handledCopy(&mu, handled))

	require.ErrorIs(t, s.DeleteSubscription(ctx, bad), meowmx.ErrInvalidArgument, "a partition is not deleted alone")
	require.NoError(t, s.DeleteSubscription(ctx, "ops"))
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Empty(t, subs, "the group and its partitions are gone")
	_, err = s.ParkedEvents(ctx, "ops")
	require.ErrorIs(t, err, meowmx.ErrSubscriptionNotFound)
}
