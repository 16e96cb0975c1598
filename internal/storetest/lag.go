package storetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxdriver"
)

// testLag: the lag listing counts the events behind a checkpoint that its
// filter selects, exactly up to a cap and estimated beyond it, and gives
// the time of the oldest unhandled event.
func testLag[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	ex := s.Driver().Executor()
	_, err := ex.SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{Name: "cats", AggregateTypes: []string{"cat"}})
	require.NoError(t, err)
	for i := range 10 {
		_, err := s.Append(ctx, cat("lag"), meowmx.Exact(int64(i)-1), ev("A", `1`))
		require.NoError(t, err)
	}
	_, err = s.Append(ctx, meowmx.StreamID{Type: "dog", ID: "rex"}, meowmx.NoStream, ev("A", `1`), ev("B", `2`))
	require.NoError(t, err)
	settle(t, s)
	first, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{Limit: 1})
	require.NoError(t, err)

	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, int64(10), subs[0].Lag, "the filter's events only")
	require.False(t, subs[0].LagEstimated)
	require.True(t, first[0].RecordedAt.Equal(subs[0].OldestUnhandled), "%s, want %s", subs[0].OldestUnhandled, first[0].RecordedAt)

	capped, err := ex.SubscriptionList(ctx, &meowmxdriver.SubscriptionListParams{LagCap: 5})
	require.NoError(t, err)
	require.True(t, capped[0].LagEstimated, "beyond the cap, an estimate")
	require.GreaterOrEqual(t, capped[0].Lag, int64(12), "the events of any type after the checkpoint")

	require.NoError(t, s.ResetSubscription(ctx, "cats", subs[0].Position))
	var last meowmx.Position
	for e, err := range s.IterAll(ctx, nil) {
		require.NoError(t, err)
		last = e.Position
	}
	require.NoError(t, s.ResetSubscription(ctx, "cats", last))
	subs, err = s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Zero(t, subs[0].Lag)
	require.True(t, subs[0].OldestUnhandled.IsZero(), "nothing unhandled")

	// A filter of event types: counted along the position order, exactly
	// up to the cap, then estimated.
	_, err = ex.SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{Name: "types", EventTypes: []string{"A"}})
	require.NoError(t, err)
	named := func(list []*meowmx.SubscriptionInfo) *meowmx.SubscriptionInfo {
		for _, sub := range list {
			if sub.Name == "types" {
				return sub
			}
		}
		t.Fatal("no subscription types")
		return nil
	}
	subs, err = s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(11), named(subs).Lag, "the A events of cats and dogs")
	require.False(t, named(subs).LagEstimated)
	capped, err = ex.SubscriptionList(ctx, &meowmxdriver.SubscriptionListParams{LagCap: 5})
	require.NoError(t, err)
	require.True(t, named(capped).LagEstimated, "beyond the cap, an estimate")
	require.GreaterOrEqual(t, named(capped).Lag, int64(5))
}

// testSubscriptionOneOwner runs one subscription on two stores of one
// database at once (two processes, as far as the database can tell): one
// worker owns it at a time, so no event reaches both handlers, even
// outside the handler's transaction.
func testSubscriptionOneOwner[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	other := b.Reopen(t, s)
	const n = 200
	for i := range n {
		_, err := s.Append(ctx, cat(fmt.Sprint("o", i%9)), meowmx.AnyVersion, ev("Born", `{}`))
		require.NoError(t, err)
	}
	var mu sync.Mutex
	handled := map[int]int{}
	mk := func(w int) *meowmx.SubscriptionConfig[TTx] {
		return &meowmx.SubscriptionConfig[TTx]{Name: "one", AggregateTypes: []string{"cat"}, BatchSize: 10,
			LockInterval: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond,
			Handler: meowmx.HandlerFunc[TTx](func(context.Context, TTx, *meowmx.RecordedEvent) error {
				mu.Lock()
				handled[w]++
				mu.Unlock()
				time.Sleep(time.Millisecond) // both workers are up while events remain
				return nil
			})}
	}
	start(t, s, mk(1))
	start(t, other, mk(2))
	wait(t, s, "one")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, n, handled[1]+handled[2], "each event reached one handler once: %v", handled)
	// The owner and the standby are listed. (A worker whose ownership
	// failed, on a busy database, is gone from the list while it waits to
	// try again: look until both are there.)
	var sub *meowmx.SubscriptionInfo
	require.Eventually(t, func() bool {
		subs, err := s.Subscriptions(ctx)
		require.NoError(t, err)
		sub = subs[0]
		return sub.Owner != nil && len(sub.Standbys) == 1
	}, 30*time.Second, 5*time.Millisecond, "an owner and a standby")
	require.Equal(t, meowmx.SubscriptionRunning, sub.State)
	require.NotEqual(t, sub.Owner.ID, sub.Standbys[0].ID)
	require.Equal(t, os.Getpid(), sub.Standbys[0].PID)
}
