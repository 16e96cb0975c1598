package meowmxdrivertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// parkedEvents returns the positions of parked rows.
func parkedEvents(rows []*meowmxdriver.ParkedRow) []meowmxtype.Position {
	out := make([]meowmxtype.Position, len(rows))
	for i, r := range rows {
		out[i] = r.Event
	}
	return out
}

// parkedList lists a subscription's parked events.
func parkedList(t *testing.T, ex meowmxdriver.Executor, p meowmxdriver.ParkedListParams) []*meowmxdriver.ParkedRow {
	t.Helper()
	rows, err := ex.ParkedList(context.Background(), &p)
	require.NoError(t, err)
	return rows
}

// testParked parks events, lists them, marks them for replay, parks one
// again and deletes them.
func testParked[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	all := appendMixed(t, ex)
	createSubscription(t, ex, "s", meowmxtype.Position{}, nil, nil)
	createSubscription(t, ex, "other", meowmxtype.Position{}, nil, nil)
	require.Empty(t, parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s"}))

	start := time.Now()
	require.NoError(t, ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
		{Subscription: "s", Event: all[2], AggregateID: "a", Error: "boom", Attempts: 1},
		{Subscription: "s", Event: all[0], AggregateID: "a", Error: "bang", Attempts: 3},
		{Subscription: "s", Event: all[4], AggregateID: "d", Error: "behind", Attempts: 0},
	}}))
	require.NoError(t, ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
		{Subscription: "other", Event: all[1], AggregateID: "a", Error: "other", Attempts: 1},
	}}))

	rows := parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s"})
	require.Equal(t, []meowmxtype.Position{all[0], all[2], all[4]}, parkedEvents(rows), "in position order, the subscription's only")
	r := rows[0]
	require.Equal(t, "s", r.Subscription)
	require.Equal(t, "a", r.AggregateID)
	require.Equal(t, "bang", r.Error)
	require.Equal(t, 3, r.Attempts)
	require.False(t, r.Replay)
	require.WithinDuration(t, start, r.ParkedAt, time.Minute, "parked now (the database's clock)")
	require.Equal(t, "d", rows[2].AggregateID)
	require.Equal(t, 0, rows[2].Attempts)
	require.Equal(t, []meowmxtype.Position{all[0], all[2]}, parkedEvents(parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s", Limit: 2})), "limit")
	require.Empty(t, parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s", ReplayOnly: true}))

	n, err := ex.ParkedMarkReplay(ctx, &meowmxdriver.ParkedMarkReplayParams{Subscription: "s", EventIDs: []int64{all[2].EventID, all[5].EventID}})
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "the ones parked")
	replay := parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s", ReplayOnly: true})
	require.Equal(t, []meowmxtype.Position{all[2]}, parkedEvents(replay))
	require.True(t, replay[0].Replay)

	// Parked again: attempts add up, the error is the latest, and it is no
	// longer marked for replay.
	require.NoError(t, ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
		{Subscription: "s", Event: all[2], AggregateID: "a", Error: "boom again", Attempts: 2},
	}}))
	rows = parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s"})
	require.Len(t, rows, 3)
	require.Equal(t, "boom again", rows[1].Error)
	require.Equal(t, 3, rows[1].Attempts)
	require.False(t, rows[1].Replay)

	n, err = ex.ParkedMarkReplay(ctx, &meowmxdriver.ParkedMarkReplayParams{Subscription: "s"})
	require.NoError(t, err)
	require.Equal(t, int64(3), n, "all of the subscription's")
	require.Len(t, parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s", ReplayOnly: true}), 3)
	require.Empty(t, parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "other", ReplayOnly: true}), "not another's")

	ok, err := ex.ParkedDelete(ctx, &meowmxdriver.ParkedDeleteParams{Subscription: "s", Event: all[0]})
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = ex.ParkedDelete(ctx, &meowmxdriver.ParkedDeleteParams{Subscription: "s", Event: all[0]})
	require.NoError(t, err)
	require.False(t, ok, "deleted already")
	ok, err = ex.ParkedDelete(ctx, &meowmxdriver.ParkedDeleteParams{Subscription: "s", Event: all[1]})
	require.NoError(t, err)
	require.False(t, ok, "parked for another subscription")
	require.Equal(t, []meowmxtype.Position{all[2], all[4]}, parkedEvents(parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s"})))

	tx := begin(t, d)
	require.NoError(t, tx.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
		{Subscription: "s", Event: all[3], AggregateID: "d", Error: "rolled back", Attempts: 1},
	}}))
	ok, err = tx.ParkedDelete(ctx, &meowmxdriver.ParkedDeleteParams{Subscription: "s", Event: all[2]})
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, parkedList(t, tx, meowmxdriver.ParkedListParams{Subscription: "s"}), 2, "a transaction sees its own writes")
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, []meowmxtype.Position{all[2], all[4]}, parkedEvents(parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s"})), "rolled back")
}

// testParkedSubscriptions parks, in one ParkedInsert, events of two
// subscriptions: each row goes to its own.
func testParkedSubscriptions[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	all := appendMixed(t, ex)
	createSubscription(t, ex, "s", meowmxtype.Position{}, nil, nil)
	createSubscription(t, ex, "t", meowmxtype.Position{}, nil, nil)
	require.NoError(t, ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
		{Subscription: "s", Event: all[0], AggregateID: "a", Error: "boom", Attempts: 1},
		{Subscription: "t", Event: all[1], AggregateID: "a", Error: "boom", Attempts: 1},
	}}))
	require.Equal(t, []meowmxtype.Position{all[0]}, parkedEvents(parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "s"})))
	require.Equal(t, []meowmxtype.Position{all[1]}, parkedEvents(parkedList(t, ex, meowmxdriver.ParkedListParams{Subscription: "t"})))
}
