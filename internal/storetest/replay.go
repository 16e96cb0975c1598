package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

// testReplayTwice runs two replays back to back against a slow handler
// that always fails: the second is asked for while the pass of the first
// hands the events over. No request is lost: each event is handed over
// by the first pass and again by a pass that listed it after the second
// request (the first pass, which read the marks before it, clears only
// those it read).
func testReplayTwice[TTx any](t *testing.T, b Backend[TTx]) {
	s := b.NewStore(t, nil)
	ctx := context.Background()
	const name, n = "replay-twice", 6
	var mu sync.Mutex
	phase := 0                  // 0: parking; 1: replaying
	attempts := map[int64]int{} // replay attempts per event id
	entered := make(chan struct{})
	cfg := &meowmx.SubscriptionConfig[TTx]{Name: name, OnFailure: meowmx.FailurePark, MaxAttempts: 1, RetryBackoff: time.Millisecond,
		PollInterval: 10 * time.Millisecond}
	cfg.Handler = meowmx.HandlerFunc[TTx](func(ctx context.Context, _ TTx, e *meowmx.RecordedEvent) error {
		mu.Lock()
		p := phase
		if p == 1 {
			if attempts[e.Position.EventID] == 0 && len(attempts) == 0 {
				close(entered)
			}
			attempts[e.Position.EventID]++
		}
		mu.Unlock()
		if p == 1 {
			time.Sleep(20 * time.Millisecond) // slow: the second request comes while the pass runs
		}
		return errors.New("still failing")
	})
	for i := range n {
		_, err := s.Append(ctx, cat(fmt.Sprint("replay-", i)), meowmx.NoStream, ev("Bad", `{}`))
		require.NoError(t, err)
	}
	start(t, s, cfg)
	wait(t, s, name)
	parked, err := s.ParkedEvents(ctx, name)
	require.NoError(t, err)
	require.Len(t, parked, n)

	mu.Lock()
	phase = 1
	mu.Unlock()
	k, err := s.ReplayParked(ctx, name, nil)
	require.NoError(t, err)
	require.Equal(t, n, k)
	select {
	case <-entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the first replay never started")
	}
	k, err = s.ReplayParked(ctx, name, nil)
	require.NoError(t, err)
	require.Equal(t, n, k, "every event is still parked")
	wait(t, s, name) // until no event is marked for replay

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, attempts, n)
	for _, p := range parked {
		require.GreaterOrEqual(t, attempts[p.Event.Position.EventID], 2,
			"event %s handed over once per request: %v", p.Event.Position, attempts)
	}
	again, err := s.ParkedEvents(ctx, name)
	require.NoError(t, err)
	require.Len(t, again, n, "a replay that fails keeps the events parked")
	for _, p := range again {
		require.False(t, p.Replay, "no mark is left once the replays are done")
	}
}
