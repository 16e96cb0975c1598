package meowmxdrivertest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// createSubscription creates a subscription at a position, with a filter.
func createSubscription(t *testing.T, ex meowmxdriver.Executor, name string, at meowmxtype.Position, aggregateTypes, eventTypes []string) *meowmxtype.SubscriptionInfo {
	t.Helper()
	s, err := ex.SubscriptionEnsure(context.Background(), &meowmxdriver.SubscriptionEnsureParams{
		Name: name, At: at, AggregateTypes: aggregateTypes, EventTypes: eventTypes,
	})
	require.NoError(t, err)
	return s
}

// subscription returns a subscription as SubscriptionGet finds it.
func subscription(t *testing.T, ex meowmxdriver.Executor, name string) *meowmxtype.SubscriptionInfo {
	t.Helper()
	s, err := ex.SubscriptionGet(context.Background(), &meowmxdriver.SubscriptionGetParams{Name: name})
	require.NoError(t, err)
	return s
}

// testSubscriptionCreateGet creates subscriptions and reads them back; a
// second ensure keeps the first one's position and stores its filter.
func testSubscriptionCreateGet[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	_, err := ex.SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: "s"})
	require.ErrorIs(t, err, meowmxdriver.ErrNotFound)

	at := meowmxtype.Position{TransactionID: 5, EventID: 7}
	want := &meowmxtype.SubscriptionInfo{Name: "s", Position: at, AggregateTypes: []string{"cat"}, EventTypes: []string{"E0", "E1"}}
	require.Equal(t, want, createSubscription(t, ex, "s", at, []string{"cat"}, []string{"E0", "E1"}))
	require.Equal(t, want, subscription(t, ex, "s"))
	want = &meowmxtype.SubscriptionInfo{Name: "s", Position: at, AggregateTypes: []string{"dog"}}
	require.Equal(t, want, createSubscription(t, ex, "s", meowmxtype.Position{TransactionID: 9, EventID: 9}, []string{"dog"}, nil),
		"the existing subscription keeps its position, with the new filter")
	require.Equal(t, want, subscription(t, ex, "s"))

	require.Equal(t, &meowmxtype.SubscriptionInfo{Name: "all"}, createSubscription(t, ex, "all", meowmxtype.Position{}, nil, []string{}),
		"no filter: nil")

	tx := begin(t, d)
	createSubscription(t, tx, "rolled back", meowmxtype.Position{}, nil, nil)
	require.Equal(t, "rolled back", subscription(t, tx, "rolled back").Name, "a transaction sees its own subscriptions")
	require.NoError(t, tx.Rollback(ctx))
	_, err = ex.SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: "rolled back"})
	require.ErrorIs(t, err, meowmxdriver.ErrNotFound)
}

// testSubscriptionCreateAtHead creates subscriptions at the head: the
// beginning of an empty store, else the last readable event.
func testSubscriptionCreateAtHead[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	s, err := ex.SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{Name: "empty", AtHead: true})
	require.NoError(t, err)
	require.Equal(t, meowmxtype.Position{}, s.Position, "at the head of an empty store: the beginning")

	all := appendMixed(t, ex)
	readable(t, ex, len(all))
	s, err = ex.SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{Name: "head", AtHead: true})
	require.NoError(t, err)
	require.Equal(t, all[5], s.Position, "at the last event")

	// The head of a filter: at its last event or after, before any event
	// it selects. (meowmxdriver says "the last readable event that the
	// filter selects"; the drivers take the last readable event of all,
	// which delivers the same events.)
	s, err = ex.SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{Name: "dogs", AtHead: true, AggregateTypes: []string{"dog"}})
	require.NoError(t, err)
	require.Equal(t, []string{"dog"}, s.AggregateTypes)
	require.GreaterOrEqual(t, s.Position.Compare(all[4]), 0, "at the last dog event or after")
	require.LessOrEqual(t, s.Position.Compare(all[5]), 0, "not after the last event")
}

// testSubscriptionCreateAtHeadNotAt creates a subscription at the head of
// an empty store, with a position: AtHead wins, and it starts at the
// beginning.
func testSubscriptionCreateAtHeadNotAt[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	s, err := d.Executor().SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{Name: "empty", AtHead: true,
		At: meowmxtype.Position{TransactionID: 3, EventID: 3}})
	require.NoError(t, err)
	require.Equal(t, meowmxtype.Position{}, s.Position, "at the head of an empty store: the beginning, not At")
}

// testSubscriptionList lists subscriptions by name with their lag and
// parked events counted.
func testSubscriptionList[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	list, err := ex.SubscriptionList(ctx, &meowmxdriver.SubscriptionListParams{LagCap: meowmxtype.LagCountMax})
	require.NoError(t, err)
	require.Empty(t, list)

	all := appendMixed(t, ex)
	createSubscription(t, ex, "c", all[5], nil, []string{"E0"})
	createSubscription(t, ex, "b", meowmxtype.Position{}, nil, nil)
	createSubscription(t, ex, "a", all[0], []string{"cat"}, nil)
	require.NoError(t, ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
		{Subscription: "b", Event: all[0], AggregateID: "a", Error: "boom", Attempts: 1},
		{Subscription: "b", Event: all[3], AggregateID: "d", Error: "boom", Attempts: 1},
	}}))

	list, err = ex.SubscriptionList(ctx, &meowmxdriver.SubscriptionListParams{LagCap: meowmxtype.LagCountMax})
	require.NoError(t, err)
	require.Len(t, list, 3)
	for i, want := range []struct {
		name          string
		lag, parked   int64
		position      meowmxtype.Position
		aggregateType []string
	}{
		{"a", 3, 0, all[0], []string{"cat"}}, // all[1], all[2], all[5]
		{"b", 6, 2, meowmxtype.Position{}, nil},
		{"c", 0, 0, all[5], nil},
	} {
		s := list[i]
		require.Equal(t, want.name, s.Name)
		require.Equal(t, want.lag, s.Lag, "%s: lag", s.Name)
		require.Equal(t, want.parked, s.Parked, "%s: parked", s.Name)
		require.Equal(t, want.position, s.Position, s.Name)
		require.Equal(t, want.aggregateType, s.AggregateTypes, s.Name)
		require.LessOrEqual(t, s.Waiting, s.Lag, "%s: waiting events are lagging ones", s.Name)
		require.GreaterOrEqual(t, s.Waiting, int64(0))
		if !d.Capabilities().Horizon {
			require.Zero(t, s.Waiting, "%s: without a horizon nothing waits", s.Name)
		}
	}
	require.Equal(t, []string{"E0"}, list[2].EventTypes)
}

// testSubscriptionSet moves checkpoints and replaces filters.
func testSubscriptionSet[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	to := meowmxtype.Position{TransactionID: 4, EventID: 40}
	ok, err := ex.SubscriptionSet(ctx, &meowmxdriver.SubscriptionSetParams{Name: "missing", To: &to})
	require.NoError(t, err)
	require.False(t, ok, "no such subscription")

	createSubscription(t, ex, "s", meowmxtype.Position{TransactionID: 1, EventID: 10}, []string{"cat"}, []string{"E0"})
	ok, err = ex.SubscriptionSet(ctx, &meowmxdriver.SubscriptionSetParams{Name: "s", To: &to})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, &meowmxtype.SubscriptionInfo{Name: "s", Position: to, AggregateTypes: []string{"cat"}, EventTypes: []string{"E0"}},
		subscription(t, ex, "s"), "the checkpoint moves, the filter stays")

	ok, err = ex.SubscriptionSet(ctx, &meowmxdriver.SubscriptionSetParams{Name: "s", SetFilter: true, AggregateTypes: []string{"dog", "cat"}})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, &meowmxtype.SubscriptionInfo{Name: "s", Position: to, AggregateTypes: []string{"dog", "cat"}},
		subscription(t, ex, "s"), "the filter is replaced, the checkpoint stays")

	back := meowmxtype.Position{}
	ok, err = ex.SubscriptionSet(ctx, &meowmxdriver.SubscriptionSetParams{Name: "s", To: &back, SetFilter: true, EventTypes: []string{"E1"}})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, &meowmxtype.SubscriptionInfo{Name: "s", EventTypes: []string{"E1"}}, subscription(t, ex, "s"),
		"both, backward too")

	tx := begin(t, d)
	ok, err = tx.SubscriptionSet(ctx, &meowmxdriver.SubscriptionSetParams{Name: "s", To: &to})
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, tx.Rollback(ctx))
	require.Equal(t, meowmxtype.Position{}, subscription(t, ex, "s").Position, "rolled back")
}

// testSubscriptionDelete deletes a subscription with its parked events.
func testSubscriptionDelete[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	all := appendMixed(t, ex)
	createSubscription(t, ex, "s", meowmxtype.Position{}, nil, nil)
	createSubscription(t, ex, "kept", meowmxtype.Position{}, nil, nil)
	for _, name := range []string{"s", "kept"} {
		require.NoError(t, ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
			{Subscription: name, Event: all[1], AggregateID: "a", Error: "boom", Attempts: 1},
		}}))
	}

	ok, err := ex.SubscriptionDelete(ctx, &meowmxdriver.SubscriptionDeleteParams{Name: "s"})
	require.NoError(t, err)
	require.True(t, ok)
	_, err = ex.SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: "s"})
	require.ErrorIs(t, err, meowmxdriver.ErrNotFound)
	parked, err := ex.ParkedList(ctx, &meowmxdriver.ParkedListParams{Subscription: "s"})
	require.NoError(t, err)
	require.Empty(t, parked, "its parked events go with it")
	parked, err = ex.ParkedList(ctx, &meowmxdriver.ParkedListParams{Subscription: "kept"})
	require.NoError(t, err)
	require.Len(t, parked, 1, "another's stay")

	ok, err = ex.SubscriptionDelete(ctx, &meowmxdriver.SubscriptionDeleteParams{Name: "s"})
	require.NoError(t, err)
	require.False(t, ok, "deleted already")
	list, err := ex.SubscriptionList(ctx, &meowmxdriver.SubscriptionListParams{LagCap: meowmxtype.LagCountMax})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "kept", list[0].Name)
}

// testSubscriptionHead finds the last event of a filter, readable or not.
func testSubscriptionHead[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	head, err := ex.SubscriptionHead(ctx, &meowmxdriver.SubscriptionHeadParams{})
	require.NoError(t, err)
	require.Nil(t, head, "no events")

	all := appendMixed(t, ex)
	for _, tc := range []struct {
		name                       string
		aggregateTypes, eventTypes []string
		want                       *meowmxtype.Position
	}{
		{"everything", nil, nil, &all[5]},
		{"an aggregate type", []string{"dog"}, nil, &all[4]},
		{"an event type", nil, []string{"E2"}, &all[2]},
		{"both", []string{"cat"}, []string{"E1"}, &all[1]},
		{"nothing", []string{"fish"}, nil, nil},
	} {
		head, err := ex.SubscriptionHead(ctx, &meowmxdriver.SubscriptionHeadParams{AggregateTypes: tc.aggregateTypes, EventTypes: tc.eventTypes})
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, head, tc.name)
	}
}

// testSubscriptionCommit moves checkpoints with ExecutorTx.SubscriptionCommit,
// fenced on the checkpoint it expects: with a transaction that wrote
// something and one that did not.
func testSubscriptionCommit[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	all := appendMixed(t, ex)
	createSubscription(t, ex, "s", meowmxtype.Position{}, nil, nil)
	snapshot := func(id string) *meowmxdriver.SnapshotSaveParams {
		return &meowmxdriver.SnapshotSaveParams{AggregateID: id, Version: 1, Data: []byte(`{}`), AggregateType: "cat", SnapshotVersion: 1, StateShape: "x"}
	}
	stored := func(id string) bool {
		_, err := ex.SnapshotGetLatest(ctx, &meowmxdriver.SnapshotGetLatestParams{AggregateID: id, MaxVersion: -1})
		if err != nil {
			require.ErrorIs(t, err, meowmxdriver.ErrNotFound)
			return false
		}
		return true
	}
	commit := func(write string, from, to meowmxtype.Position, async bool) bool {
		t.Helper()
		tx := begin(t, d)
		if write != "" {
			require.NoError(t, tx.SnapshotSave(ctx, snapshot(write)))
		}
		ok, err := tx.SubscriptionCommit(ctx, &meowmxdriver.SubscriptionCommitParams{Name: "s", From: from, To: to, Async: async})
		require.NoError(t, err)
		return ok
	}

	require.False(t, commit("", all[3], all[0], false), "fenced, nothing written")
	require.Equal(t, meowmxtype.Position{}, subscription(t, ex, "s").Position)
	require.False(t, commit("fenced", all[3], all[0], false), "fenced, after a write")
	require.Equal(t, meowmxtype.Position{}, subscription(t, ex, "s").Position)
	require.False(t, stored("fenced"), "a fenced commit rolls its transaction back")

	require.True(t, commit("moved", meowmxtype.Position{}, all[0], false), "after a write")
	require.Equal(t, all[0], subscription(t, ex, "s").Position)
	require.True(t, stored("moved"), "committed with the checkpoint")
	require.True(t, commit("", all[0], all[2], false), "nothing written")
	require.Equal(t, all[2], subscription(t, ex, "s").Position)
	require.True(t, commit("async", all[2], all[4], true), "async")
	require.Equal(t, all[4], subscription(t, ex, "s").Position)
	require.True(t, stored("async"))

	require.False(t, commit("stale", all[2], all[5], false), "from a stale checkpoint")
	require.False(t, stored("stale"))
	require.Equal(t, all[4], subscription(t, ex, "s").Position)
	tx := begin(t, d)
	ok, err := tx.SubscriptionCommit(ctx, &meowmxdriver.SubscriptionCommitParams{Name: "missing", To: all[0]})
	require.NoError(t, err)
	require.False(t, ok, "no such subscription")
}
