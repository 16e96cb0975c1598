package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

// testTail runs writers (single appends, transactions of several appends,
// rolled-back transactions) while a reader pages forward through ReadAll
// by position, as a subscriber does. The reader must see every committed
// event exactly once, in global order, and no rolled-back one.
func testTail[TTx any](t *testing.T, b Backend[TTx]) {
	const writers, rounds, limit = 6, 20, 7
	ctx := context.Background()
	s := b.NewStore(t, nil)
	other := b.Reopen(t, s)

	var seen []*meowmx.RecordedEvent
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		var after meowmx.Position
		stopping := false
		for {
			page, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{After: after, Limit: limit})
			if err != nil {
				readerDone <- err
				return
			}
			seen = append(seen, page...)
			if len(page) > 0 {
				after = page[len(page)-1].Position
			}
			if stopping && len(page) < limit {
				readerDone <- nil
				return
			}
			select {
			case <-stop:
				// Everything is committed and readable: read to the end.
				stopping = true
			default:
			}
		}
	}()

	var wg sync.WaitGroup
	var mu sync.Mutex
	committed := map[string]bool{} // payloads
	for w := range writers {
		store := []*meowmx.Store[TTx]{s, other}[w%2]
		wg.Go(func() {
			version := int64(-1)
			for r := range rounds {
				payload := func(i int) string { return fmt.Sprintf(`{"w":%d,"r":%d,"i":%d}`, w, r, i) }
				stream := cat(fmt.Sprintf("tail-%d", w))
				var evs []meowmx.EventData
				for i := range 1 + r%3 {
					evs = append(evs, ev("E", payload(i)))
				}
				if r%4 != 3 {
					if _, err := store.Append(ctx, stream, meowmx.Exact(version), evs...); err != nil {
						t.Errorf("writer %d round %d: %v", w, r, err)
						return
					}
				} else if err := inTx(ctx, store, r%8 == 7, func(tx TTx) error {
					_, err := store.AppendTx(ctx, tx, stream, meowmx.Exact(version), evs...)
					return err
				}); err != nil {
					t.Errorf("writer %d round %d: %v", w, r, err)
					return
				} else if r%8 == 7 {
					continue // rolled back
				}
				version += int64(len(evs))
				mu.Lock()
				for _, e := range evs {
					committed[string(e.Data)] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	settle(t, s)
	close(stop)
	require.NoError(t, <-readerDone)

	got := others(seen)
	for i := 1; i < len(got); i++ {
		require.Equal(t, -1, got[i-1].Position.Compare(got[i].Position), "global order, no duplicates")
	}
	payloads := map[string]bool{}
	for _, e := range got {
		payloads[string(e.Data)] = true
	}
	require.Equal(t, committed, payloads, "every committed event once, no rolled-back one")
	var all []*meowmx.RecordedEvent
	for e, err := range s.IterAll(ctx, nil) {
		require.NoError(t, err)
		all = append(all, e)
	}
	require.Equal(t, got, others(all), "the tailing reader saw what a reader after the fact sees")
}

// inTx runs fn in a transaction of s's driver, then commits it, or rolls
// it back when rollback is true. It is safe to call from any goroutine.
func inTx[TTx any](ctx context.Context, s *meowmx.Store[TTx], rollback bool, fn func(tx TTx) error) error {
	etx, err := s.Driver().Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(s.Driver().UnwrapTx(etx)); err != nil {
		_ = etx.Rollback(ctx)
		return err
	}
	if rollback {
		return etx.Rollback(ctx)
	}
	return etx.Commit(ctx)
}

// testBigAppend appends more events at once than fit in one statement of
// some drivers.
func testBigAppend[TTx any](t *testing.T, b Backend[TTx]) {
	const n = 2500
	ctx := context.Background()
	s := b.NewStore(t, nil)
	evs := make([]meowmx.EventData, n)
	for i := range evs {
		evs[i] = ev("E", fmt.Sprint(i))
	}
	res, err := s.Append(ctx, cat("big"), meowmx.NoStream, evs...)
	require.NoError(t, err)
	require.Equal(t, int64(n-1), res.Version)
	for i, e := range res.Events {
		require.Equal(t, int64(i), e.Version)
		if i > 0 {
			require.Equal(t, -1, res.Events[i-1].Position.Compare(e.Position))
		}
	}
	got, err := s.ReadStream(ctx, "big", nil)
	require.NoError(t, err)
	require.Len(t, got, n)
	for i, e := range got {
		require.Equal(t, fmt.Sprint(i), string(e.Data))
		require.Equal(t, res.Events[i].Position, e.Position)
	}
	_, err = s.Append(ctx, cat("big"), meowmx.Exact(n-1), ev("After", `{}`))
	require.NoError(t, err)
}

// testPayloads checks that payloads and metadata come back byte for byte,
// whatever the JSON: no normalisation of spaces, numbers, escapes or
// duplicate keys.
func testPayloads[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	payloads := []string{
		`null`, `0`, `-1.50e+300`, `12345678901234567890123456789`, `true`,
		`"caf\u00e9 é 🐈 \"quoted\" \\ \n"`,
		`[ 1,2 ,  3 ]`,
		`{"b": 1, "a": {"nested": [null, {}]}, "b": 2}`,
		"{\n\t\"indented\": true\n}",
	}
	var evs []meowmx.EventData
	for _, p := range payloads {
		evs = append(evs, meowmx.EventData{Type: "P", Data: json.RawMessage(p), Metadata: json.RawMessage(p)})
	}
	_, err := s.Append(ctx, cat("payloads"), meowmx.NoStream, evs...)
	require.NoError(t, err)
	got, err := s.ReadStream(ctx, "payloads", nil)
	require.NoError(t, err)
	require.Len(t, got, len(payloads))
	for i, p := range payloads {
		require.Equal(t, p, string(got[i].Data))
		require.Equal(t, p, string(got[i].Metadata))
	}
}

// testMigrate checks that migrating again changes nothing and that a store
// on a database without the tables says so.
func testMigrate[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	_, err := s.Append(ctx, cat("kept"), meowmx.NoStream, ev("A", `1`))
	require.NoError(t, err)
	res, err := s.Migrate(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, res.Applied)
	require.Positive(t, res.Version)
	got, err := s.ReadStream(ctx, "kept", nil)
	require.NoError(t, err)
	require.Len(t, got, 1)

	if b.NewUnmigrated == nil {
		t.Skip("the backend gives no store without tables")
	}
	u := b.NewUnmigrated(t)
	_, err = u.Append(ctx, cat("a"), meowmx.NoStream, ev("A", `1`))
	require.ErrorIs(t, err, meowmx.ErrNotMigrated)
	_, err = u.ReadStream(ctx, "a", nil)
	require.ErrorIs(t, err, meowmx.ErrNotMigrated)
	_, err = u.Stream(ctx, "a")
	require.ErrorIs(t, err, meowmx.ErrNotMigrated)
	_, err = u.ReadAll(ctx, nil)
	require.ErrorIs(t, err, meowmx.ErrNotMigrated)
	res, err = u.Migrate(ctx, nil)
	require.NoError(t, err)
	require.NotEmpty(t, res.Applied)
	_, err = u.Append(ctx, cat("a"), meowmx.NoStream, ev("A", `1`))
	require.NoError(t, err)
}

// testCanceled checks that a canceled context stops an append before it
// writes anything.
func testCanceled[TTx any](t *testing.T, b Backend[TTx]) {
	s := b.NewStore(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Append(ctx, cat("canceled"), meowmx.NoStream, ev("A", `1`))
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.Stream(context.Background(), "canceled")
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound)
}

// testNoHorizon checks what backends without a commit horizon promise
// instead: positions follow commit order, so an event can be read across
// streams as soon as its append returns, even while a transaction is open.
func testNoHorizon[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	if s.Driver().Capabilities().Horizon {
		t.Skip("this backend reads across streams below a commit horizon: see Horizon")
	}
	var after meowmx.Position
	for i := range 20 {
		res, err := s.Append(ctx, cat(fmt.Sprint("now-", i%3)), meowmx.AnyVersion, ev("A", fmt.Sprint(i)))
		require.NoError(t, err)
		evs, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{After: after})
		require.NoError(t, err)
		require.Len(t, evs, 1, "readable at once")
		require.Equal(t, res.Events[0].Position, evs[0].Position)
		after = evs[0].Position
	}
	tx, _, rollback := begin(t, s)
	_, err := s.AppendTx(ctx, tx, cat("open"), meowmx.NoStream, ev("A", `"uncommitted"`))
	require.NoError(t, err)
	all, err := s.ReadAll(ctx, nil)
	require.NoError(t, err)
	require.Len(t, all, 20, "an open transaction hides its own events only")
	require.NoError(t, rollback())
}
