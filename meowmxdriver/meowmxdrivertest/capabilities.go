package meowmxdrivertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// testBatchOfOne checks that a batch of one append is EventAppend on the
// pool: the same result, refusals and errors included. Each case sets up
// two streams alike, appends to one with EventAppend and to the other with
// a batch of one.
func testBatchOfOne[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ba := d.Capabilities().BatchAppender
	if ba == nil {
		t.Log("not applicable: the driver has no BatchAppender (Capabilities)")
		return
	}
	ex := d.Executor()
	stored := uuid.New()
	for _, tc := range []struct {
		name  string
		setup func(id string) // prepares the stream id
		p     func(id string) *meowmxdriver.EventAppendParams
	}{
		{"new stream", nil, func(id string) *meowmxdriver.EventAppendParams { return events(cat(id), meowmxtype.NoStream, 2) }},
		{"existing stream", func(id string) { mustAppend(t, ex, events(cat(id), meowmxtype.NoStream, 1)) },
			func(id string) *meowmxdriver.EventAppendParams { return events(cat(id), meowmxtype.Exact(0), 1) }},
		{"with UUIDs", nil, func(id string) *meowmxdriver.EventAppendParams {
			return withUUIDs(events(cat(id), meowmxtype.AnyVersion, 2))
		}},
		{"refused, missing stream", nil, func(id string) *meowmxdriver.EventAppendParams { return events(cat(id), meowmxtype.Exact(3), 1) }},
		{"refused, existing stream", func(id string) { mustAppend(t, ex, events(cat(id), meowmxtype.NoStream, 1)) },
			func(id string) *meowmxdriver.EventAppendParams { return events(cat(id), meowmxtype.NoStream, 1) }},
		{"refused, another type", func(id string) { mustAppend(t, ex, events(cat(id), meowmxtype.NoStream, 1)) },
			func(id string) *meowmxdriver.EventAppendParams {
				return events(meowmxtype.StreamID{Type: "dog", ID: id}, meowmxtype.AnyVersion, 1)
			}},
		{"refused, UUID stored", func(id string) {
			if id[0] == 'x' { // the UUID is stored once, by the first stream
				mustAppend(t, ex, withUUIDs(events(cat("uuid-holder"), meowmxtype.NoStream, 1), stored))
			}
			mustAppend(t, ex, events(cat(id), meowmxtype.NoStream, 1))
		}, func(id string) *meowmxdriver.EventAppendParams {
			return withUUIDs(events(cat(id), meowmxtype.Exact(0), 1), stored)
		}},
		{"conflict", func(id string) {
			mustAppend(t, ex, events(cat(id), meowmxtype.NoStream, 1))
			b.WriteStray(t, d, id, 1)
		}, func(id string) *meowmxdriver.EventAppendParams { return events(cat(id), meowmxtype.Exact(0), 1) }},
	} {
		alone, batched := "x-"+tc.name, "y-"+tc.name
		if tc.setup != nil {
			tc.setup(alone)
			tc.setup(batched)
		}
		want, wantErr := ex.EventAppend(ctx, tc.p(alone))
		results, err := ba.EventAppendBatch(ctx, []*meowmxdriver.EventAppendParams{tc.p(batched)})
		if wantErr != nil {
			require.Error(t, err, "%s: EventAppend failed with %v", tc.name, wantErr)
			var ie *meowmxdriver.BatchItemError
			require.False(t, errors.As(err, &ie), "%s: a batch of one fails as EventAppend does, not with a *BatchItemError: %v", tc.name, err)
			for _, sentinel := range []error{meowmxdriver.ErrDuplicate, meowmxdriver.ErrReordered, meowmxdriver.ErrInvalidInput, meowmxdriver.ErrCommitUnknown} {
				require.Equal(t, errors.Is(wantErr, sentinel), errors.Is(err, sentinel), "%s: %v and %v", tc.name, wantErr, err)
			}
			require.Equal(t, streamVersion(t, ex, alone), streamVersion(t, ex, batched), tc.name)
			continue
		}
		require.NoError(t, err, tc.name)
		require.Len(t, results, 1, tc.name)
		got := results[0]
		require.Equal(t, want.Appended, got.Appended, tc.name)
		if want.Appended {
			requireAppended(t, tc.p(batched), got)
			require.Equal(t, want.Events[0].Version, got.Events[0].Version, tc.name)
			continue
		}
		require.Empty(t, got.Events, tc.name)
		if want.Stream == nil {
			require.Nil(t, got.Stream, tc.name)
			continue
		}
		require.NotNil(t, got.Stream, tc.name)
		require.Equal(t, *want.Stream, meowmxtype.StreamInfo{StreamID: meowmxtype.StreamID{Type: got.Stream.StreamID.Type, ID: alone}, Version: got.Stream.Version}, tc.name)
		require.Equal(t, batched, got.Stream.StreamID.ID, tc.name)
	}
}

// testBatchOfSeveral sends a batch with several appends to one stream,
// refused ones among them: results in input order, each append seeing the
// earlier ones, a refused one with its stream as it found it.
func testBatchOfSeveral[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ba := d.Capabilities().BatchAppender
	if ba == nil {
		t.Log("not applicable: the driver has no BatchAppender (Capabilities)")
		return
	}
	ex := d.Executor()
	mustAppend(t, ex, events(cat("e"), meowmxtype.NoStream, 3))
	type want struct {
		appended bool
		version  int64                  // of the first event, when appended
		stream   *meowmxtype.StreamInfo // when refused
	}
	at := func(id string, v int64) *meowmxtype.StreamInfo {
		return &meowmxtype.StreamInfo{StreamID: cat(id), Version: v}
	}
	items := []struct {
		p    *meowmxdriver.EventAppendParams
		want want
	}{
		{events(cat("s1"), meowmxtype.NoStream, 2), want{true, 0, nil}},
		{events(cat("m"), meowmxtype.Exact(3), 1), want{false, 0, nil}},
		{events(cat("s1"), meowmxtype.NoStream, 1), want{false, 0, at("s1", 1)}},
		{events(cat("s1"), meowmxtype.Exact(1), 1), want{true, 2, nil}},
		{events(cat("e"), meowmxtype.Exact(1), 1), want{false, 0, at("e", 2)}},
		{events(meowmxtype.StreamID{Type: "dog", ID: "e"}, meowmxtype.AnyVersion, 1), want{false, 0, at("e", 2)}},
		{withUUIDs(events(cat("s2"), meowmxtype.AnyVersion, 3)), want{true, 0, nil}},
		{events(cat("e"), meowmxtype.Exact(2), 1), want{true, 3, nil}},
		{events(cat("s1"), meowmxtype.StreamExists, 2), want{true, 3, nil}},
		{events(cat("s1"), meowmxtype.Exact(2), 1), want{false, 0, at("s1", 4)}},
	}
	ps := make([]*meowmxdriver.EventAppendParams, len(items))
	for i, it := range items {
		ps[i] = it.p
	}
	results, err := ba.EventAppendBatch(ctx, ps)
	require.NoError(t, err)
	require.Len(t, results, len(items))
	var txID *uint64
	for i, it := range items {
		r, name := results[i], fmt.Sprintf("append %d, to %s at %s", i, it.p.Stream, it.p.Expected)
		require.Equal(t, it.want.appended, r.Appended, name)
		if !it.want.appended {
			require.Empty(t, r.Events, name)
			require.Equal(t, it.want.stream, r.Stream, "%s: the stream as the append found it", name)
			continue
		}
		requireAppended(t, it.p, r)
		require.Equal(t, it.want.version, r.Events[0].Version, name)
		if txID == nil {
			txID = &r.Events[0].Position.TransactionID
		}
		require.Equal(t, *txID, r.Events[0].Position.TransactionID, "%s: one transaction", name)
	}
	s1 := streamRead(t, ex, "s1")
	require.Equal(t, []int64{0, 1, 2, 3, 4}, versions(s1))
	require.Equal(t, []meowmxtype.Position{results[0].Events[0].Position, results[0].Events[1].Position, results[3].Events[0].Position,
		results[8].Events[0].Position, results[8].Events[1].Position}, positions(s1), "in the order of the batch")
	require.Equal(t, int64(3), streamVersion(t, ex, "e"))
	require.Equal(t, int64(2), streamVersion(t, ex, "s2"))
	require.Equal(t, int64(-2), streamVersion(t, ex, "m"), "a refused append creates no stream")
}

// testBatchItemError sends a batch in which one append fails on a unique
// violation: the error names it, and nothing of the batch is written.
func testBatchItemError[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ba := d.Capabilities().BatchAppender
	if ba == nil {
		t.Log("not applicable: the driver has no BatchAppender (Capabilities)")
		return
	}
	ex := d.Executor()
	mustAppend(t, ex, events(cat("s"), meowmxtype.NoStream, 1))
	b.WriteStray(t, d, "s", 1)
	for _, ps := range [][]*meowmxdriver.EventAppendParams{
		{events(cat("a"), meowmxtype.NoStream, 1), events(cat("s"), meowmxtype.Exact(0), 1), events(cat("b"), meowmxtype.NoStream, 2)},
		{events(cat("a"), meowmxtype.NoStream, 1), events(cat("a"), meowmxtype.Exact(0), 1), events(cat("s"), meowmxtype.AnyVersion, 1)},
	} {
		_, err := ba.EventAppendBatch(ctx, ps)
		var ie *meowmxdriver.BatchItemError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, cat("s"), ps[ie.Index].Stream, "the error names the failing append: %v", err)
		require.ErrorIs(t, err, meowmxdriver.ErrDuplicate)
		for _, id := range []string{"a", "b"} {
			require.Equal(t, int64(-2), streamVersion(t, ex, id), "nothing of a failed batch is written")
		}
		require.Equal(t, int64(0), streamVersion(t, ex, "s"))
	}
}

// testListener checks that a notification reaches a listener.
func testListener[TTx any](t *testing.T, b Backend[TTx]) {
	d := b.NewDriver(t)
	l := d.Capabilities().Listener
	if l == nil {
		t.Log("not applicable: the driver has no Listener (Capabilities)")
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan uint64, 64)
	done := make(chan error, 1)
	go func() {
		done <- l.Listen(ctx, func(txID uint64) {
			select {
			case got <- txID:
			default:
			}
		})
	}()
	stopped := false
	stop := func() error {
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Listen did not return when its context ended")
		}
		return nil
	}
	t.Cleanup(func() {
		if !stopped {
			_ = stop()
		}
	})
	receive := func(what string) uint64 {
		t.Helper()
		select {
		case tx := <-got:
			return tx
		case err := <-done:
			t.Fatalf("Listen returned %v, waiting for %s", err, what)
		case <-time.After(30 * time.Second):
			t.Fatalf("no call of fn: waiting for %s", what)
		}
		return 0
	}
	require.Equal(t, uint64(0), receive("the call of fn(0) once listening"))
	// A listener that carries no transaction ids (a probe) says 0.
	require.NoError(t, l.Notify(ctx, 4242))
	require.Contains(t, []uint64{4242, 0}, receive("the notification of 4242"))
	require.NoError(t, l.Notify(ctx, 1<<40))
	require.Contains(t, []uint64{1 << 40, 0}, receive("the notification of 1<<40"))
	require.Error(t, stop(), "Listen returns when its context ends")
}

// testHorizon checks HorizonGet against Capabilities().Horizon: a zero
// Horizon without one; with one, a horizon that an open transaction holds
// back, and reads across streams that stop below it. A driver whose answer
// contradicts its Capabilities fails.
func testHorizon[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	has := d.Capabilities().Horizon
	tx := begin(t, d)
	for name, ex := range map[string]meowmxdriver.Executor{"pool": d.Executor(), "transaction": tx} {
		h, err := ex.HorizonGet(ctx)
		require.NoError(t, err, name)
		require.NotNil(t, h, name)
		if !has {
			require.Equal(t, meowmxdriver.Horizon{}, *h, "%s: Capabilities().Horizon is false: HorizonGet must return a zero Horizon", name)
			continue
		}
		require.NotZero(t, h.Xmin, "%s: Capabilities().Horizon is true: HorizonGet must return a horizon", name)
		require.NotZero(t, h.Xmax, name)
		require.LessOrEqual(t, h.Xmin, h.Xmax, name)
	}
	require.NoError(t, tx.Rollback(ctx))
	if !has {
		return
	}

	// An open transaction with an id holds the horizon at or below it, and
	// an event committed after it is not read across streams until it
	// ends.
	older := begin(t, d)
	first := mustAppend(t, older, events(cat("older"), meowmxtype.NoStream, 1)).Events[0].Position
	newer := mustAppend(t, d.Executor(), events(cat("newer"), meowmxtype.NoStream, 1)).Events[0].Position
	require.Equal(t, -1, first.Compare(newer), "the older transaction's event is first in the global order")
	h, err := d.Executor().HorizonGet(ctx)
	require.NoError(t, err)
	require.LessOrEqual(t, h.Xmin, first.TransactionID, "an open transaction holds the horizon back")
	require.Greater(t, h.Xmax, newer.TransactionID, "Xmax is the next transaction id")
	evs, err := d.Executor().EventReadAll(ctx, &meowmxdriver.EventReadAllParams{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, evs, "an event above the horizon is not read")
	require.NoError(t, older.Commit(ctx))
	require.Equal(t, []meowmxtype.Position{first, newer}, positions(readable(t, d.Executor(), 2)))
	h, err = d.Executor().HorizonGet(ctx)
	require.NoError(t, err)
	require.Greater(t, h.Xmin, newer.TransactionID, "both are below the horizon once readable")
}

// testHorizonHolders checks HorizonHolders against Capabilities().Horizon:
// none without a horizon; with one, an open transaction with an id.
func testHorizonHolders[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	tx := begin(t, d)
	pos := mustAppend(t, tx, events(cat("held"), meowmxtype.NoStream, 1)).Events[0].Position
	ex := d.Executor()
	if !d.Capabilities().Horizon {
		holders, err := tx.HorizonHolders(ctx, &meowmxdriver.HorizonHoldersParams{Limit: 100})
		require.NoError(t, err)
		require.Empty(t, holders, "Capabilities().Horizon is false: nothing holds a horizon")
		require.NoError(t, tx.Commit(ctx))
		holders, err = ex.HorizonHolders(ctx, &meowmxdriver.HorizonHoldersParams{Limit: 100})
		require.NoError(t, err)
		require.Empty(t, holders, "Capabilities().Horizon is false: nothing holds a horizon")
		return
	}
	holders, err := ex.HorizonHolders(ctx, &meowmxdriver.HorizonHoldersParams{Limit: 1000})
	require.NoError(t, err)
	var mine *meowmxtype.HorizonHolder
	for _, h := range holders {
		// HorizonHolder.TransactionID is a 32-bit transaction id, positions
		// have 64 (an epoch above them).
		if uint32(h.TransactionID) == uint32(pos.TransactionID) {
			mine = h
		}
	}
	require.NotNil(t, mine, "an open transaction with an id holds the horizon: %d not in %+v", pos.TransactionID, holders)
	require.NotZero(t, mine.PID)
	require.Equal(t, "idle in transaction", mine.State)
	require.False(t, mine.TransactionStart.IsZero())
	require.GreaterOrEqual(t, mine.Age, time.Duration(0))
	holders, err = ex.HorizonHolders(ctx, &meowmxdriver.HorizonHoldersParams{OlderThan: time.Hour, Limit: 1000})
	require.NoError(t, err)
	for _, h := range holders {
		require.NotEqual(t, uint32(pos.TransactionID), uint32(h.TransactionID), "younger than OlderThan")
	}
	require.NoError(t, tx.Commit(ctx))
}
