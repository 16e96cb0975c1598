package meowmxdrivertest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// appendMixed appends three events to cat/a, two to dog/d and one to
// cat/b, in that order, and returns the six events' positions.
func appendMixed(t *testing.T, ex meowmxdriver.Executor) []meowmxtype.Position {
	t.Helper()
	var out []meowmxtype.Position
	for _, p := range []*meowmxdriver.EventAppendParams{
		events(cat("a"), meowmxtype.NoStream, 3),
		events(meowmxtype.StreamID{Type: "dog", ID: "d"}, meowmxtype.NoStream, 2),
		events(cat("b"), meowmxtype.NoStream, 1),
	} {
		for _, e := range mustAppend(t, ex, p).Events {
			out = append(out, e.Position)
		}
	}
	return out
}

// readAllPages pages through EventReadAll from the beginning, limit events
// a page, as a subscriber does.
func readAllPages(t *testing.T, ex meowmxdriver.Executor, p meowmxdriver.EventReadAllParams) []*meowmxtype.RecordedEvent {
	t.Helper()
	var out []*meowmxtype.RecordedEvent
	for {
		page, err := ex.EventReadAll(context.Background(), &p)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), p.Limit)
		out = append(out, page...)
		if len(page) < p.Limit {
			return out
		}
		p.After = page[len(page)-1].Position
	}
}

// testEventReadAll pages through every event, with and without filters.
func testEventReadAll[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	none, err := ex.EventReadAll(ctx, &meowmxdriver.EventReadAllParams{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, none)

	all := appendMixed(t, ex)
	evs := readable(t, ex, len(all))
	require.Equal(t, all, positions(evs), "in global order")
	for i := 1; i < len(evs); i++ {
		require.Equal(t, -1, evs[i-1].Position.Compare(evs[i].Position))
	}
	require.Equal(t, meowmxtype.StreamID{Type: "dog", ID: "d"}, evs[4].StreamID)
	require.Equal(t, int64(1), evs[4].Version)
	require.Equal(t, "E1", evs[4].Type)
	require.Equal(t, `{"n":1}`, string(evs[4].Data))
	require.Equal(t, `{"odd":1}`, string(evs[4].Metadata))
	require.Nil(t, evs[3].Metadata)
	require.False(t, evs[3].RecordedAt.IsZero())

	for _, limit := range []int{1, 2, 5, 6, 100} {
		got := readAllPages(t, ex, meowmxdriver.EventReadAllParams{Limit: limit})
		require.Equal(t, all, positions(got), "pages of %d", limit)
	}
	after, err := ex.EventReadAll(ctx, &meowmxdriver.EventReadAllParams{After: all[2], Limit: 2})
	require.NoError(t, err)
	require.Equal(t, all[3:5], positions(after), "after a position")
	after, err = ex.EventReadAll(ctx, &meowmxdriver.EventReadAllParams{After: all[5], Limit: 10})
	require.NoError(t, err)
	require.Empty(t, after, "after the last event")

	for _, tc := range []struct {
		name            string
		aggregateTypes  []string
		eventTypes      []string
		want            []meowmxtype.Position
		limitsToAttempt []int
	}{
		{"one aggregate type", []string{"cat"}, nil, []meowmxtype.Position{all[0], all[1], all[2], all[5]}, []int{1, 3, 10}},
		{"both aggregate types", []string{"dog", "cat"}, nil, all, []int{2, 10}},
		{"no such aggregate type", []string{"fish"}, nil, nil, []int{10}},
		{"one event type", nil, []string{"E0"}, []meowmxtype.Position{all[0], all[3], all[5]}, []int{1, 10}},
		{"event types", nil, []string{"E2", "E1"}, []meowmxtype.Position{all[1], all[2], all[4]}, []int{2, 10}},
		{"both filters", []string{"cat"}, []string{"E1"}, []meowmxtype.Position{all[1]}, []int{1, 10}},
		{"both filters, nothing", []string{"dog"}, []string{"E2"}, nil, []int{10}},
	} {
		for _, limit := range tc.limitsToAttempt {
			got := readAllPages(t, ex, meowmxdriver.EventReadAllParams{AggregateTypes: tc.aggregateTypes, EventTypes: tc.eventTypes, Limit: limit})
			if tc.want == nil {
				require.Empty(t, got, tc.name)
				continue
			}
			require.Equal(t, tc.want, positions(got), "%s, pages of %d", tc.name, limit)
		}
	}
}

// testStreamRead reads a stream forward and backward, by version range
// and limit.
func testStreamRead[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	mustAppend(t, ex, events(cat("s"), meowmxtype.NoStream, 6))
	mustAppend(t, ex, events(cat("other"), meowmxtype.NoStream, 3))
	mustAppend(t, ex, events(cat("s"), meowmxtype.Exact(5), 4))

	for _, tc := range []struct {
		name     string
		from, to int64
		backward bool
		limit    int
		want     []int64
	}{
		{"all", 0, -1, false, 100, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"from", 7, -1, false, 100, []int64{7, 8, 9}},
		{"range", 3, 5, false, 100, []int64{3, 4, 5}},
		{"one version", 4, 4, false, 100, []int64{4}},
		{"limit", 2, -1, false, 3, []int64{2, 3, 4}},
		{"to beyond the end", 8, 1000, false, 100, []int64{8, 9}},
		{"from beyond the end", 10, -1, false, 100, nil},
		{"empty range", 5, 4, false, 100, nil},
		{"backward", 0, -1, true, 100, []int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{"backward, limit", 0, -1, true, 3, []int64{9, 8, 7}},
		{"backward, range", 2, 6, true, 100, []int64{6, 5, 4, 3, 2}},
		{"backward, range and limit", 2, 6, true, 2, []int64{6, 5}},
	} {
		got, err := ex.StreamRead(ctx, &meowmxdriver.StreamReadParams{AggregateID: "s", From: tc.from, To: tc.to, Backward: tc.backward, Limit: tc.limit})
		require.NoError(t, err, tc.name)
		if tc.want == nil {
			require.Empty(t, got, tc.name)
			continue
		}
		require.Equal(t, tc.want, versions(got), tc.name)
		for _, e := range got {
			require.Equal(t, cat("s"), e.StreamID, tc.name)
		}
	}
	got, err := ex.StreamRead(ctx, &meowmxdriver.StreamReadParams{AggregateID: "s", From: 6, To: 6, Limit: 1})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "E0", got[0].Type, "version 6 is the first event of the second append")
	require.Equal(t, `{"n":0}`, string(got[0].Data))

	none, err := ex.StreamRead(ctx, &meowmxdriver.StreamReadParams{AggregateID: "missing", To: -1, Limit: 10})
	require.NoError(t, err, "a missing stream has no events")
	require.Empty(t, none)
}

// testStreamGet looks streams up, on the pool and in a transaction.
func testStreamGet[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	mustAppend(t, d.Executor(), events(cat("s"), meowmxtype.NoStream, 3))
	tx := begin(t, d)
	for name, ex := range map[string]meowmxdriver.Executor{"pool": d.Executor(), "transaction": tx} {
		info, err := ex.StreamGet(ctx, &meowmxdriver.StreamGetParams{AggregateID: "s"})
		require.NoError(t, err, name)
		require.Equal(t, &meowmxtype.StreamInfo{StreamID: cat("s"), Version: 2}, info, name)
		_, err = ex.StreamGet(ctx, &meowmxdriver.StreamGetParams{AggregateID: "missing"})
		require.ErrorIs(t, err, meowmxdriver.ErrNotFound, name)
	}
	require.NoError(t, tx.Rollback(ctx))
}

// testEventGet reads events by id.
func testEventGet[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	all := appendMixed(t, ex)
	ids := []int64{all[4].EventID, all[0].EventID, all[5].EventID + 1000, all[2].EventID}
	got, err := ex.EventGet(ctx, &meowmxdriver.EventGetParams{IDs: ids})
	require.NoError(t, err)
	require.Equal(t, []meowmxtype.Position{all[0], all[2], all[4]}, positions(got), "in global order, missing ids left out")
	require.Equal(t, meowmxtype.StreamID{Type: "dog", ID: "d"}, got[2].StreamID)
	require.Equal(t, "E1", got[2].Type)
	require.Equal(t, int64(2), got[1].Version)
	require.Equal(t, `{"n":2}`, string(got[1].Data))

	got, err = ex.EventGet(ctx, &meowmxdriver.EventGetParams{IDs: []int64{}})
	require.NoError(t, err)
	require.Empty(t, got)
}
