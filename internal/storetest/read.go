package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

func testRace[TTx any](t *testing.T, b Backend[TTx]) {
	const writers, rounds = 32, 5
	ctx := context.Background()
	s := b.NewStore(t, nil)
	// Half the writers use a second store, as another process would.
	stores := []*meowmx.Store[TTx]{s, b.Reopen(t, s)}
	_, err := s.Append(ctx, cat("existing"), meowmx.NoStream, ev("A", `0`))
	require.NoError(t, err)

	race := func(stream meowmx.StreamID, expected meowmx.ExpectedVersion) int {
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				<-start
				_, err := stores[w%2].Append(ctx, stream, expected, ev("W", fmt.Sprintf(`{"writer":%d}`, w)), ev("W2", `{}`))
				results <- err
			})
		}
		close(start)
		wg.Wait()
		close(results)
		won := 0
		for err := range results {
			if err == nil {
				won++
				continue
			}
			require.ErrorIs(t, err, meowmx.ErrConcurrency)
		}
		return won
	}
	for r := range rounds {
		require.Equal(t, 1, race(cat("existing"), meowmx.Exact(int64(2*r))), "existing stream, round %d", r)
		require.Equal(t, 1, race(cat(fmt.Sprintf("new-%d", r)), meowmx.NoStream), "new stream, round %d", r)
		evs, err := s.ReadStream(ctx, fmt.Sprintf("new-%d", r), nil)
		require.NoError(t, err)
		require.Len(t, evs, 2)
		require.Equal(t, evs[0].Data, evs[0].Data)
	}
	evs, err := s.ReadStream(ctx, "existing", nil)
	require.NoError(t, err)
	require.Len(t, evs, 1+2*rounds)
	for i := 1; i < len(evs); i += 2 {
		require.Equal(t, "W", evs[i].Type)
		require.Equal(t, "W2", evs[i+1].Type, "an append's events are consecutive")
	}
	// AnyVersion never conflicts: every writer lands.
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			_, err := stores[w%2].Append(ctx, cat("any"), meowmx.AnyVersion, ev("A", `1`), ev("B", `2`))
			require.NoError(t, err)
		})
	}
	wg.Wait()
	evs, err = s.ReadStream(ctx, "any", nil)
	require.NoError(t, err)
	require.Len(t, evs, 2*writers)
	for i, e := range evs {
		require.Equal(t, int64(i), e.Version)
	}
}

func testReadStream[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, &meowmx.Config{PageSize: 7})
	const n = 50
	for i := range n {
		_, err := s.Append(ctx, cat("long"), meowmx.Exact(int64(i-1)), ev("E", fmt.Sprint(i)))
		require.NoError(t, err)
	}
	versions := func(evs []*meowmx.RecordedEvent) []int64 {
		out := []int64{}
		for _, e := range evs {
			out = append(out, e.Version)
		}
		return out
	}
	span := func(from, to, step int64) []int64 {
		out := []int64{}
		for v := from; (step > 0 && v <= to) || (step < 0 && v >= to); v += step {
			out = append(out, v)
		}
		return out
	}
	// A store reading a page of one event: on PostgreSQL IterStream and
	// ReadStream stream windows of 16 pages (16 events here), so the
	// cases below cross windows too.
	small, err := meowmx.NewStore(s.Driver(), &meowmx.Config{PageSize: 1})
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		opts *meowmx.ReadStreamOpts
		want []int64
	}{
		{"all", nil, span(0, n-1, 1)},
		{"from", &meowmx.ReadStreamOpts{From: 45}, span(45, 49, 1)},
		{"to", &meowmx.ReadStreamOpts{To: new(int64(3))}, span(0, 3, 1)},
		{"from to", &meowmx.ReadStreamOpts{From: 10, To: new(int64(24))}, span(10, 24, 1)},
		{"only 0", &meowmx.ReadStreamOpts{To: new(int64(0))}, span(0, 0, 1)},
		{"limit", &meowmx.ReadStreamOpts{From: 3, Limit: 9}, span(3, 11, 1)},
		{"backward", &meowmx.ReadStreamOpts{Backward: true}, span(n-1, 0, -1)},
		{"backward limit", &meowmx.ReadStreamOpts{Backward: true, Limit: 3}, span(n-1, n-3, -1)},
		{"backward to", &meowmx.ReadStreamOpts{Backward: true, To: new(int64(20)), Limit: 15}, span(20, 6, -1)},
		{"backward from", &meowmx.ReadStreamOpts{Backward: true, From: 40}, span(n-1, 40, -1)},
		{"past the end", &meowmx.ReadStreamOpts{From: 99}, span(1, 0, 1)},
		{"empty range", &meowmx.ReadStreamOpts{From: 9, To: new(int64(8))}, span(1, 0, 1)},
		// Page boundaries: the page size is 7.
		{"whole pages", &meowmx.ReadStreamOpts{From: 29}, span(29, 49, 1)},
		{"limit of a page", &meowmx.ReadStreamOpts{Limit: 7}, span(0, 6, 1)},
		{"limit of two pages", &meowmx.ReadStreamOpts{From: 1, Limit: 14}, span(1, 14, 1)},
		{"limit past the end", &meowmx.ReadStreamOpts{From: 43, Limit: 8}, span(43, 49, 1)},
		{"backward whole pages", &meowmx.ReadStreamOpts{Backward: true, To: new(int64(13))}, span(13, 0, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadStream(ctx, "long", tc.opts)
			require.NoError(t, err)
			require.Equal(t, tc.want, versions(got))
			var iterated []*meowmx.RecordedEvent
			for e, err := range s.IterStream(ctx, "long", tc.opts) {
				require.NoError(t, err)
				iterated = append(iterated, e)
			}
			require.Equal(t, tc.want, versions(iterated))
			got, err = small.ReadStream(ctx, "long", tc.opts)
			require.NoError(t, err)
			require.Equal(t, tc.want, versions(got), "pages of one event")
			iterated = nil
			for e, err := range small.IterStream(ctx, "long", tc.opts) {
				require.NoError(t, err)
				iterated = append(iterated, e)
			}
			require.Equal(t, tc.want, versions(iterated), "pages of one event")
		})
	}
	// Breaking out of the iterator early is fine, within the first window
	// or a later one, and leaves the store usable.
	for _, stop := range []int{10, 20} {
		seen := 0
		for _, err := range small.IterStream(ctx, "long", nil) {
			require.NoError(t, err)
			if seen++; seen == stop {
				break
			}
		}
		require.Equal(t, stop, seen)
		got, err := small.ReadStream(ctx, "long", &meowmx.ReadStreamOpts{From: n - 1})
		require.NoError(t, err)
		require.Equal(t, []int64{n - 1}, versions(got))
	}
	// The loop may use the store while it iterates: read and append.
	seen := 0
	for e, err := range small.IterStream(ctx, "long", &meowmx.ReadStreamOpts{To: new(int64(n - 1))}) {
		require.NoError(t, err)
		require.Equal(t, int64(seen), e.Version)
		inner, err := small.ReadStream(ctx, "long", &meowmx.ReadStreamOpts{From: e.Version, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, []int64{e.Version}, versions(inner))
		if seen%10 == 0 {
			_, err = small.Append(ctx, cat("side"), meowmx.AnyVersion, ev("E", "0"))
			require.NoError(t, err)
		}
		seen++
	}
	require.Equal(t, n, seen)
}

func testReadAll[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, &meowmx.Config{PageSize: 3})
	_, err := s.Append(ctx, cat("c1"), meowmx.NoStream, ev("Born", `1`))
	require.NoError(t, err)
	_, err = s.Append(ctx, meowmx.StreamID{Type: "dog", ID: "d1"}, meowmx.NoStream, ev("Born", `2`), ev("Barked", `3`))
	require.NoError(t, err)
	// Five events in one transaction: pages of two split them.
	tx, commit, _ := begin(t, s)
	_, err = s.AppendTx(ctx, tx, cat("c2"), meowmx.NoStream, ev("Born", `4`), ev("Meowed", `5`), ev("Meowed", `6`))
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, cat("c1"), meowmx.Exact(0), ev("Meowed", `7`), ev("Slept", `8`))
	require.NoError(t, err)
	require.NoError(t, commit())
	_, err = s.Append(ctx, cat("c1"), meowmx.Exact(2), ev("Meowed", `9`))
	require.NoError(t, err)

	payloads := func(evs []*meowmx.RecordedEvent) (out []string) {
		for i, e := range evs {
			if i > 0 {
				require.Equal(t, -1, evs[i-1].Position.Compare(e.Position), "global order")
			}
			out = append(out, string(e.Data))
		}
		return out
	}
	settle(t, s)
	readPaged := func(o meowmx.ReadAllOpts) []*meowmx.RecordedEvent {
		var all []*meowmx.RecordedEvent
		for {
			page, err := s.ReadAll(ctx, &o)
			require.NoError(t, err)
			all = append(all, page...)
			if len(page) < o.Limit {
				return others(all)
			}
			o.After = page[len(page)-1].Position
		}
	}
	all := readPaged(meowmx.ReadAllOpts{Limit: 2})
	require.Equal(t, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}, payloads(all))

	var iterated []*meowmx.RecordedEvent
	for e, err := range s.IterAll(ctx, nil) {
		require.NoError(t, err)
		iterated = append(iterated, e)
	}
	require.Equal(t, payloads(all), payloads(others(iterated)))

	cats := readPaged(meowmx.ReadAllOpts{Limit: 2, AggregateTypes: []string{"cat"}})
	require.Equal(t, []string{"1", "4", "5", "6", "7", "8", "9"}, payloads(cats))
	for _, e := range cats {
		require.Equal(t, "cat", e.StreamID.Type)
	}
	meows := readPaged(meowmx.ReadAllOpts{Limit: 2, EventTypes: []string{"Meowed", "Barked"}})
	require.Equal(t, []string{"3", "5", "6", "7", "9"}, payloads(meows))
	catMeows := readPaged(meowmx.ReadAllOpts{Limit: 5, AggregateTypes: []string{"cat", "cow"}, EventTypes: []string{"Meowed"}})
	require.Equal(t, []string{"5", "6", "7", "9"}, payloads(catMeows))

	after := readPaged(meowmx.ReadAllOpts{Limit: 100, After: all[4].Position})
	require.Equal(t, []string{"6", "7", "8", "9"}, payloads(after))
	none, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{After: all[8].Position})
	require.NoError(t, err)
	require.Empty(t, others(none))
	def, err := s.ReadAll(ctx, nil)
	require.NoError(t, err)
	require.Len(t, def, 3, "the default limit is Config.PageSize")
}

// testHorizon shows why readers page by (transaction_id, id) below
// pg_snapshot_xmin: an event committed late by an older transaction is
// never skipped.
func testHorizon[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	if !s.Driver().Capabilities().Horizon {
		t.Skip("this backend commits one writer at a time: positions follow commit order")
	}
	older, commit, _ := begin(t, s)
	_, err := s.AppendTx(ctx, older, cat("older"), meowmx.NoStream, ev("A", `"older"`))
	require.NoError(t, err)
	_, err = s.Append(ctx, cat("newer"), meowmx.NoStream, ev("A", `"newer"`))
	require.NoError(t, err)

	evs, err := s.ReadAll(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, evs, "the newer event waits while an older transaction is open")

	require.NoError(t, commit())
	require.Eventually(t, func() bool {
		evs, err = s.ReadAll(ctx, nil)
		require.NoError(t, err)
		return len(evs) == 2
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, `"older"`, string(evs[0].Data), "the older transaction's event comes first")
	require.Equal(t, `"newer"`, string(evs[1].Data))
}
