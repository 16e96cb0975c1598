package meowmx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// fakeBatches records the batches a groupCommitter sends. Each call
// blocks until the test answers it.
type fakeBatches struct {
	calls chan *fakeCall
}

type fakeCall struct {
	ctx   context.Context
	ids   []string
	reply chan fakeReply
}

type fakeReply struct {
	results []*meowmxdriver.EventAppendResult
	err     error
}

func newFakeBatches() *fakeBatches { return &fakeBatches{calls: make(chan *fakeCall)} }

func (f *fakeBatches) send(ctx context.Context, ps []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
	c := &fakeCall{ctx: ctx, reply: make(chan fakeReply)}
	for _, p := range ps {
		c.ids = append(c.ids, p.Stream.ID)
	}
	f.calls <- c
	r := <-c.reply
	return r.results, r.err
}

// next returns the next batch sent.
func (f *fakeBatches) next(t *testing.T) *fakeCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("no batch sent")
		return nil
	}
}

// commit answers c: every append is written, with its aggregate id's
// position in the batch as its version.
func (c *fakeCall) commit() {
	results := make([]*meowmxdriver.EventAppendResult, len(c.ids))
	for i := range c.ids {
		results[i] = &meowmxdriver.EventAppendResult{Appended: true, Events: []AppendedEvent{{Version: int64(i)}}}
	}
	c.reply <- fakeReply{results: results}
}

func (c *fakeCall) fail(err error) { c.reply <- fakeReply{err: err} }

func params(id string) *meowmxdriver.EventAppendParams {
	return &meowmxdriver.EventAppendParams{Stream: StreamID{Type: "cat", ID: id}, Expected: AnyVersion, EventTypes: []string{"A"}}
}

// queued returns how many appends wait in g's queue.
func (g *groupCommitter) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

type outcome struct {
	id string
	r  groupResult
}

// start appends ids from one goroutine each, and returns their outcomes
// as they come.
func start(ctx context.Context, g *groupCommitter, ids ...string) chan outcome {
	out := make(chan outcome, len(ids))
	for _, id := range ids {
		go func() { out <- outcome{id, g.append(ctx, params(id))} }()
	}
	return out
}

func collect(t *testing.T, out chan outcome, n int) map[string]groupResult {
	t.Helper()
	got := map[string]groupResult{}
	for range n {
		select {
		case o := <-out:
			got[o.id] = o.r
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d appends returned", len(got), n)
		}
	}
	return got
}

// busy starts an append of "plug" and holds its batch in flight, with
// only one batch allowed in flight: later appends queue up.
func busy(t *testing.T, cfg GroupCommitConfig) (*groupCommitter, *fakeBatches, *fakeCall, chan outcome) {
	t.Helper()
	f := newFakeBatches()
	cfg.MaxBatch = cmp.Or(cfg.MaxBatch, GroupCommitMaxBatchDefault)
	g := newGroupCommitter(f.send, cfg)
	g.inFlight = 1
	plug := start(context.Background(), g, "plug")
	c := f.next(t)
	require.Equal(t, []string{"plug"}, c.ids, "a lone append is sent at once, alone")
	return g, f, c, plug
}

func ids(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d", prefix, i)
	}
	return out
}

func TestGroupCommitBatches(t *testing.T) {
	t.Parallel()
	g, f, plug, plugOut := busy(t, GroupCommitConfig{MaxBatch: 8})
	want := ids(20, "s")
	out := start(context.Background(), g, want...)
	require.Eventually(t, func() bool { return g.queued() == 20 }, 30*time.Second, time.Millisecond)
	plug.commit()
	require.True(t, collect(t, plugOut, 1)["plug"].res.Appended)

	var sent []string
	for _, size := range []int{8, 8, 4} {
		c := f.next(t)
		require.Len(t, c.ids, size, "batches are filled up to MaxBatch")
		require.True(t, slices.IsSorted(c.ids), "a batch is sorted by aggregate id")
		sent = append(sent, c.ids...)
		c.commit()
	}
	slices.Sort(sent)
	require.Equal(t, want, sent, "every append is sent exactly once")
	for id, r := range collect(t, out, 20) {
		require.NoError(t, r.err, id)
		require.True(t, r.res.Appended, id)
	}
}

func TestGroupCommitOrderWithinStream(t *testing.T) {
	t.Parallel()
	// Appends to one stream reach the driver in the order they were made,
	// though the batch is sorted by stream.
	var sent [][]int64
	plugged, release := make(chan struct{}), make(chan struct{})
	send := func(_ context.Context, ps []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
		if ps[0].Stream.ID == "plug" {
			close(plugged)
			<-release
		}
		var vs []int64
		for _, p := range ps {
			vs = append(vs, int64(p.Expected))
		}
		sent = append(sent, vs) // one flusher at a time: no race
		results := make([]*meowmxdriver.EventAppendResult, len(ps))
		for i := range results {
			results[i] = &meowmxdriver.EventAppendResult{}
		}
		return results, nil
	}
	g := newGroupCommitter(send, GroupCommitConfig{MaxBatch: 100})
	g.inFlight = 1
	done := make(chan struct{}, 21)
	go func() { g.append(context.Background(), params("plug")); done <- struct{}{} }()
	<-plugged
	for i := range 20 {
		p := params([]string{"z", "a"}[i%2])
		p.Expected = Exact(int64(i / 2))
		go func() { g.append(context.Background(), p); done <- struct{}{} }()
		require.Eventually(t, func() bool { return g.queued() == i+1 }, 30*time.Second, time.Millisecond)
	}
	close(release)
	for range 21 {
		<-done
	}
	require.Equal(t, [][]int64{{int64(AnyVersion)}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, sent)
}

func TestGroupCommitItemErrorRetriesOthers(t *testing.T) {
	t.Parallel()
	g, f, plug, _ := busy(t, GroupCommitConfig{})
	out := start(context.Background(), g, "a", "b", "c", "d")
	require.Eventually(t, func() bool { return g.queued() == 4 }, 30*time.Second, time.Millisecond)
	plug.commit()

	c := f.next(t)
	require.Equal(t, []string{"a", "b", "c", "d"}, c.ids)
	c.fail(&meowmxdriver.BatchItemError{Index: 1, Err: meowmxdriver.ErrDuplicate})
	c = f.next(t)
	require.Equal(t, []string{"b"}, c.ids, "the failing append is sent alone")
	c.fail(meowmxdriver.ErrDuplicate) // alone, its error is final
	c = f.next(t)
	require.Equal(t, []string{"a", "c", "d"}, c.ids, "the others are sent again without the failing append")
	c.fail(fmt.Errorf("wrapped: %w", &meowmxdriver.BatchItemError{Index: 2, Err: meowmxdriver.ErrInvalidInput}))
	c = f.next(t)
	require.Equal(t, []string{"d"}, c.ids)
	c.commit()
	c = f.next(t)
	require.Equal(t, []string{"a", "c"}, c.ids)
	c.commit()

	got := collect(t, out, 4)
	require.ErrorIs(t, got["b"].err, meowmxdriver.ErrDuplicate, "the failing append gets its own error")
	for _, id := range []string{"a", "c", "d"} {
		require.NoError(t, got[id].err)
		require.True(t, got[id].res.Appended)
	}
}

func TestGroupCommitBatchErrorReachesEveryone(t *testing.T) {
	t.Parallel()
	g, f, plug, _ := busy(t, GroupCommitConfig{})
	out := start(context.Background(), g, "a", "b", "c")
	require.Eventually(t, func() bool { return g.queued() == 3 }, 30*time.Second, time.Millisecond)
	plug.commit()
	lost := fmt.Errorf("conn reset: %w", meowmxdriver.ErrCommitUnknown)
	f.next(t).fail(lost)
	for id, r := range collect(t, out, 3) {
		require.ErrorIs(t, r.err, ErrCommitUnknown, id)
	}
}

func TestGroupCommitCancel(t *testing.T) {
	t.Parallel()
	g, f, plug, _ := busy(t, GroupCommitConfig{})

	// Cancelled while queued: dropped, never sent.
	ctx, cancel := context.WithCancel(context.Background())
	queued := start(ctx, g, "dropped")
	stays := start(context.Background(), g, "stays")
	require.Eventually(t, func() bool { return g.queued() == 2 }, 30*time.Second, time.Millisecond)
	cancel()
	r := collect(t, queued, 1)["dropped"]
	require.ErrorIs(t, r.err, context.Canceled)
	require.NotErrorIs(t, r.err, ErrCommitUnknown, "a queued append was not sent")
	require.Equal(t, 1, g.queued())

	// Cancelled after it was sent: the outcome is unknown, the batch goes on.
	plug.commit()
	c := f.next(t)
	require.Equal(t, []string{"stays"}, c.ids)
	ctx2, cancel2 := context.WithCancel(context.Background())
	sent := start(ctx2, g, "sent")
	require.Eventually(t, func() bool { return g.queued() == 1 }, 30*time.Second, time.Millisecond)
	c.commit()
	require.True(t, collect(t, stays, 1)["stays"].res.Appended)
	c = f.next(t)
	require.Equal(t, []string{"sent"}, c.ids)
	cancel2()
	r = collect(t, sent, 1)["sent"]
	require.ErrorIs(t, r.err, context.Canceled)
	require.ErrorIs(t, r.err, ErrCommitUnknown, "a sent append may commit")
	select {
	case <-c.ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a batch whose callers all left is not cancelled")
	}
	c.commit()

	// Already cancelled: refused at once.
	r = g.append(ctx, params("late"))
	require.ErrorIs(t, r.err, context.Canceled)
}

func TestGroupCommitBatchContextLivesWhileOneWaits(t *testing.T) {
	t.Parallel()
	g, f, plug, _ := busy(t, GroupCommitConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	gone := start(ctx, g, "gone")
	waits := start(context.Background(), g, "waits")
	require.Eventually(t, func() bool { return g.queued() == 2 }, 30*time.Second, time.Millisecond)
	plug.commit()
	c := f.next(t)
	cancel()
	require.ErrorIs(t, collect(t, gone, 1)["gone"].err, ErrCommitUnknown)
	require.NoError(t, c.ctx.Err(), "another caller still waits")
	c.fail(&meowmxdriver.BatchItemError{Index: 1, Err: errors.New("boom")}) // "waits" runs alone
	c = f.next(t)
	require.Equal(t, []string{"waits"}, c.ids)
	require.NoError(t, c.ctx.Err(), "its caller still waits")
	c.commit()
	require.True(t, collect(t, waits, 1)["waits"].res.Appended)
	c = f.next(t)
	require.Equal(t, []string{"gone"}, c.ids)
	require.Error(t, c.ctx.Err(), "nobody waits for this batch any more")
	c.commit()
}

func TestGroupCommitWindow(t *testing.T) {
	t.Parallel()
	// With a window, a batch on a busy store waits for MaxBatch appends.
	g, f, plug, _ := busy(t, GroupCommitConfig{Window: GroupCommitWindowMax, MaxBatch: 3})
	g.window = time.Hour // never expires in this test
	out := start(context.Background(), g, "a")
	require.Eventually(t, func() bool { return g.queued() == 1 }, 30*time.Second, time.Millisecond)
	plug.commit()
	more := start(context.Background(), g, "b", "c")
	c := f.next(t)
	require.Len(t, c.ids, 3)
	c.commit()
	collect(t, out, 1)
	collect(t, more, 2)
	// The flusher now waits an hour for a next batch: wake it, so that it
	// finds the queue empty and ends before the test does.
	require.Eventually(t, func() bool {
		select {
		case g.full <- struct{}{}:
		default:
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.flushers == 0
	}, 30*time.Second, time.Millisecond)
}

func TestGroupCommitConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		gc  GroupCommitConfig
		arg string
	}{
		{GroupCommitConfig{Window: -time.Microsecond}, "Config.GroupCommit.Window"},
		{GroupCommitConfig{Window: GroupCommitWindowMax + 1}, "Config.GroupCommit.Window"},
		{GroupCommitConfig{MaxBatch: -1}, "Config.GroupCommit.MaxBatch"},
		{GroupCommitConfig{MaxBatch: GroupCommitMaxBatchMax + 1}, "Config.GroupCommit.MaxBatch"},
	} {
		err := (&Config{GroupCommit: tc.gc}).withDefaults().validate()
		var ae *ArgumentError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, tc.arg, ae.Arg)
	}
	cfg := (&Config{}).withDefaults()
	require.NoError(t, cfg.validate())
	require.Equal(t, GroupCommitMaxBatchDefault, cfg.GroupCommit.MaxBatch)
	require.False(t, cfg.GroupCommit.Disabled)
}

// TestGroupCommitStalledBatch holds a batch in flight: appends made once
// it has been in flight for groupStallAfter go in a second batch beside it,
// and those queued behind that one follow it.
func TestGroupCommitStalledBatch(t *testing.T) {
	t.Parallel()
	f := newFakeBatches()
	g := newGroupCommitter(f.send, GroupCommitConfig{MaxBatch: GroupCommitMaxBatchDefault})
	stalledOut := start(context.Background(), g, "stalled")
	stalled := f.next(t)
	time.Sleep(2 * groupStallAfter)
	out := start(context.Background(), g, "a")
	c := f.next(t)
	require.Equal(t, []string{"a"}, c.ids, "sent beside the stalled batch")
	c.commit()
	require.True(t, collect(t, out, 1)["a"].res.Appended)
	stalled.commit()
	require.True(t, collect(t, stalledOut, 1)["stalled"].res.Appended)
}
