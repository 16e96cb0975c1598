package meowmxdrivertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// The statement counts: how many statements an append that does not
// simply write sends, through Executor().EventAppend on the pool unless
// said otherwise. Backend.Statements says how many each driver is meant
// to send, and its test file what each one is; a change in the driver
// that sends more (or fewer) fails here.

// requireSends checks what c recorded against want.
func requireSends(t *testing.T, c *Counter, want Sends, what string) {
	t.Helper()
	require.NotEmpty(t, want, "Backend.Statements does not say how %s is sent", what)
	t.Logf("%s: %d statements, sent as %v:\n%s", what, c.Sends().Statements(), c.Sends(), c)
	require.Equal(t, want, c.Sends(), "%s: statements sent:\n%s", what, c)
}

// testStatementsRefused counts an append refused for its expected
// version, to a stream that exists.
func testStatementsRefused[TTx any](t *testing.T, b Backend[TTx]) {
	d, c := b.NewCountingDriver(t)
	ex := d.Executor()
	mustAppend(t, ex, events(cat("s"), meowmxtype.NoStream, 1))
	// The same, elsewhere, so that what the driver caches is cached.
	mustAppend(t, ex, events(cat("warm"), meowmxtype.NoStream, 1))
	mustRefuse(t, ex, events(cat("warm"), meowmxtype.Exact(5), 1))

	c.Reset()
	found := mustRefuse(t, ex, events(cat("s"), meowmxtype.Exact(5), 1))
	requireSends(t, c, b.Statements.Refused, "a refused append")
	require.Equal(t, &meowmxtype.StreamInfo{StreamID: cat("s"), Version: 0}, found)
}

// testStatementsConflict counts an append that a unique violation stops:
// a stray event holds the version it would write.
func testStatementsConflict[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d, c := b.NewCountingDriver(t)
	ex := d.Executor()
	for _, id := range []string{"warm", "s"} {
		mustAppend(t, ex, events(cat(id), meowmxtype.NoStream, 1))
		b.WriteStray(t, d, id, 1)
	}
	_, err := ex.EventAppend(ctx, events(cat("warm"), meowmxtype.Exact(0), 1))
	require.ErrorIs(t, err, meowmxdriver.ErrDuplicate)

	c.Reset()
	_, err = ex.EventAppend(ctx, events(cat("s"), meowmxtype.Exact(0), 1))
	requireSends(t, c, b.Statements.Conflict, "a conflicting append")
	require.ErrorIs(t, err, meowmxdriver.ErrDuplicate)
	require.Equal(t, int64(0), streamVersion(t, ex, "s"), "nothing written: the version did not move")
	evs := streamRead(t, ex, "s")
	require.Equal(t, []int64{0, 1}, versions(evs))
	require.Equal(t, []string{"E0", "Stray"}, []string{evs[0].Type, evs[1].Type}, "nothing written: the stray event is the only other one")
}

// testStatementsConflictUUIDs counts an append with event UUIDs, none of
// them stored, that a unique violation stops: it fails as one without
// UUIDs does.
func testStatementsConflictUUIDs[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d, c := b.NewCountingDriver(t)
	ex := d.Executor()
	for _, id := range []string{"warm", "s"} {
		mustAppend(t, ex, withUUIDs(events(cat(id), meowmxtype.NoStream, 1)))
		b.WriteStray(t, d, id, 1)
	}
	_, err := ex.EventAppend(ctx, withUUIDs(events(cat("warm"), meowmxtype.Exact(0), 1)))
	require.ErrorIs(t, err, meowmxdriver.ErrDuplicate)

	c.Reset()
	p := withUUIDs(events(cat("s"), meowmxtype.Exact(0), 1))
	_, err = ex.EventAppend(ctx, p)
	requireSends(t, c, b.Statements.ConflictUUIDs, "a conflicting append with UUIDs")
	require.ErrorIs(t, err, meowmxdriver.ErrDuplicate)
	require.Equal(t, int64(0), streamVersion(t, ex, "s"), "nothing written: the version did not move")
	require.Equal(t, []int64{0, 1}, versions(streamRead(t, ex, "s")))
	listed, err := ex.EventListByUUID(ctx, &meowmxdriver.EventListByUUIDParams{EventUUIDs: p.EventUUIDs})
	require.NoError(t, err)
	require.Empty(t, listed, "nothing written")
}

// testStatementsReorderedTx counts an append in a caller's transaction
// that took its id before a newer transaction wrote the stream.
func testStatementsReorderedTx[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d, c := b.NewCountingDriver(t)
	if !d.Capabilities().Horizon {
		t.Log("not applicable: without a horizon, positions follow commit order and no writer is overtaken")
		return
	}
	ex := d.Executor()
	mustAppend(t, ex, events(cat("warm"), meowmxtype.NoStream, 1))
	older := begin(t, d)
	mustAppend(t, older, events(cat("x"), meowmxtype.NoStream, 1)) // takes its transaction id
	mustAppend(t, ex, events(cat("s"), meowmxtype.NoStream, 1))    // a newer transaction writes s

	c.Reset()
	_, err := older.EventAppend(ctx, events(cat("s"), meowmxtype.Exact(0), 1))
	requireSends(t, c, b.Statements.ReorderedTx, "a reordered append in a caller's transaction")
	require.ErrorIs(t, err, meowmxdriver.ErrReordered)
	require.NoError(t, older.Rollback(ctx))
	require.Len(t, streamRead(t, ex, "s"), 1)
}

// testStatementsReordered counts an append whose transaction was
// overtaken (Backend.Overtake): the driver runs it again, and it writes.
func testStatementsReordered[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d, c := b.NewCountingDriver(t)
	if !d.Capabilities().Horizon {
		t.Log("not applicable: without a horizon, positions follow commit order and no writer is overtaken")
		return
	}
	require.NotNil(t, b.Overtake, "Backend.Overtake is needed for a driver with a horizon")
	ex := d.Executor()
	first := mustAppend(t, ex, events(cat("s"), meowmxtype.NoStream, 1))
	release := b.Overtake(t, d, "s")

	c.Reset()
	type outcome struct {
		res *meowmxdriver.EventAppendResult
		err error
	}
	done := make(chan outcome, 1)
	p := events(cat("s"), meowmxtype.Exact(0), 1)
	go func() {
		res, err := ex.EventAppend(ctx, p)
		done <- outcome{res, err}
	}()
	release()
	var out outcome
	select {
	case out = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the overtaken append did not return")
	}
	requireSends(t, c, b.Statements.Reordered, "a reordered append")
	require.NoError(t, out.err)
	require.True(t, out.res.Appended, "run again, it writes")
	requireAppended(t, p, out.res)
	require.Equal(t, int64(1), out.res.Events[0].Version)
	require.Equal(t, -1, first.Events[0].Position.Compare(out.res.Events[0].Position), "after the stream's first event in the global order")
	require.Equal(t, []int64{0, 1}, versions(streamRead(t, ex, "s")))
}
