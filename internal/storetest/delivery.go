package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

// testDelivery: every committed event reaches a waiting subscriber, and a
// reader following the store, whoever wrote it: another store that closes
// right after its append (as a process that exits would), the aggregate
// helper, and a writer that is not meowmx (plain SQL, no notification).
// Polling is set far beyond the test's bounds, so only wake-ups deliver.
func testDelivery[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	rec := &recorder{}
	start(t, s, &meowmx.SubscriptionConfig[TTx]{Name: "live", Handler: handlerOf[TTx](rec),
		PollInterval: time.Hour, MaxPollInterval: time.Hour})
	wait(t, s, "live")

	followCtx, stopFollowing := context.WithCancel(ctx)
	followed := make(chan *meowmx.RecordedEvent, 100)
	followDone := make(chan error, 1)
	go func() {
		for ev, err := range s.IterAll(followCtx, &meowmx.ReadAllOpts{Follow: true}) {
			if err != nil {
				followDone <- err
				return
			}
			followed <- ev
		}
		followDone <- nil
	}()

	seen := 0
	expect := func(what string) {
		t.Helper()
		seen++
		require.Eventually(t, func() bool { return len(rec.get()) == seen }, 30*time.Second, time.Millisecond,
			"%s: the subscriber was not woken", what)
		select {
		case <-followed:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the follower was not woken", what)
		}
	}

	// A writer that closes its store right after the append.
	other := b.Reopen(t, s)
	_, err := other.Append(ctx, cat("d1"), meowmx.NoStream, ev("A", `1`))
	require.NoError(t, err)
	require.NoError(t, other.Close(ctx))
	expect("another store's append")

	// The aggregate helper.
	repo := orderRepo(t, s, nil, nil)
	_, err = repo.Update(ctx, "d2", addItems(1))
	require.NoError(t, err)
	expect("Repository.Update")

	// Plain SQL, no notification: the driver's probe finds it.
	if b.InsertEvent == nil {
		t.Log("the backend cannot write plain SQL: skipped that writer")
	} else {
		b.InsertEvent(t, s, cat("d3"))
		expect("a plain SQL insert")
	}

	stopFollowing()
	select {
	case err := <-followDone:
		require.NoError(t, err, "a follower ends quietly with its context")
	case <-time.After(30 * time.Second):
		t.Fatal("the follower did not end with its context")
	}
}
