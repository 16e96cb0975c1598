package meowmxdrivertest

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// testAppendExpectedVersion appends with every kind of expected version to
// a missing stream, to a stream at version 2 and, as another aggregate
// type, to that stream: on the pool and in a caller's transaction. A
// refused append writes nothing and returns the stream as found, nil when
// it does not exist.
func testAppendExpectedVersion[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	type kase struct {
		stream   string // "missing", "two", "other type"
		expected meowmxtype.ExpectedVersion
		ok       bool
	}
	cases := []kase{
		{"missing", meowmxtype.AnyVersion, true},
		{"missing", meowmxtype.NoStream, true},
		{"missing", meowmxtype.Exact(-1), true},
		{"missing", meowmxtype.StreamExists, false},
		{"missing", meowmxtype.Exact(0), false},
		{"missing", meowmxtype.Exact(5), false},
		{"two", meowmxtype.AnyVersion, true},
		{"two", meowmxtype.NoStream, false},
		{"two", meowmxtype.StreamExists, true},
		{"two", meowmxtype.Exact(2), true},
		{"two", meowmxtype.Exact(1), false},
		{"two", meowmxtype.Exact(3), false},
	}
	for _, e := range []meowmxtype.ExpectedVersion{meowmxtype.AnyVersion, meowmxtype.NoStream, meowmxtype.StreamExists, meowmxtype.Exact(2)} {
		cases = append(cases, kase{"other type", e, false})
	}
	for _, inTx := range []bool{false, true} {
		for i, tc := range cases {
			id := fmt.Sprintf("%s-%d-tx%v", tc.stream, i, inTx)
			before := int64(-1)
			if tc.stream != "missing" {
				mustAppend(t, d.Executor(), events(cat(id), meowmxtype.NoStream, 3))
				before = 2
			}
			stream := cat(id)
			if tc.stream == "other type" {
				stream.Type = "dog"
			}
			name := fmt.Sprintf("%s at %s (in a transaction: %v)", tc.stream, tc.expected, inTx)
			ex := d.Executor()
			var tx meowmxdriver.ExecutorTx
			if inTx {
				tx = begin(t, d)
				ex = tx
			}
			p := events(stream, tc.expected, 2)
			res, err := ex.EventAppend(ctx, p)
			require.NoError(t, err, name)
			require.Equal(t, tc.ok, res.Appended, name)
			if tc.ok {
				requireAppended(t, p, res)
				require.Equal(t, before+1, res.Events[0].Version, name)
			} else {
				require.Empty(t, res.Events, name)
				if tc.stream == "missing" {
					require.Nil(t, res.Stream, "%s: the stream as found: none", name)
				} else {
					require.Equal(t, &meowmxtype.StreamInfo{StreamID: cat(id), Version: 2}, res.Stream, "%s: the stream as found", name)
				}
			}
			if inTx {
				require.NoError(t, tx.Commit(ctx), name)
			}
			want := before
			if tc.ok {
				want += 2
			}
			require.Len(t, streamRead(t, d.Executor(), id), int(want+1), name)
			if want < 0 {
				require.Equal(t, int64(-2), streamVersion(t, d.Executor(), id), "%s: a refused append creates no stream", name)
			} else {
				require.Equal(t, want, streamVersion(t, d.Executor(), id), name)
			}
		}
	}
}

// testAppendEvents checks what an append stores: types, data byte for
// byte, metadata or none, positions and versions as the append returned
// them.
func testAppendEvents[TTx any](t *testing.T, b Backend[TTx]) {
	d := b.NewDriver(t)
	ex := d.Executor()
	p := events(cat("c"), meowmxtype.NoStream, 3)
	p.Data[0] = []byte(`{"spaced":  [1, 2],   "kept": "as given"}`)
	first := mustAppend(t, ex, p)
	require.Equal(t, []int64{0, 1, 2}, []int64{first.Events[0].Version, first.Events[1].Version, first.Events[2].Version})
	second := mustAppend(t, ex, events(cat("c"), meowmxtype.Exact(2), 1))
	require.Equal(t, int64(3), second.Events[0].Version)
	require.Equal(t, -1, first.Events[2].Position.Compare(second.Events[0].Position), "a later append is later in the global order")

	got := streamRead(t, ex, "c")
	require.Len(t, got, 4)
	for i, e := range got {
		require.Equal(t, cat("c"), e.StreamID)
		require.Equal(t, int64(i), e.Version)
		require.Equal(t, uuid.Nil, e.UUID, "appended without a UUID")
		require.False(t, e.RecordedAt.IsZero())
	}
	for i := range 3 {
		require.Equal(t, p.EventTypes[i], got[i].Type)
		require.Equal(t, string(p.Data[i]), string(got[i].Data), "data byte for byte")
		if p.Metadata[i] == nil {
			require.Nil(t, got[i].Metadata, "no metadata")
		} else {
			require.Equal(t, string(p.Metadata[i]), string(got[i].Metadata))
		}
		require.Equal(t, first.Events[i].Position, got[i].Position)
		require.True(t, first.Events[i].RecordedAt.Equal(got[i].RecordedAt), "event %d: RecordedAt %s, read %s", i, first.Events[i].RecordedAt, got[i].RecordedAt)
	}
	require.Equal(t, second.Events[0].Position, got[3].Position)
	info, err := ex.StreamGet(context.Background(), &meowmxdriver.StreamGetParams{AggregateID: "c"})
	require.NoError(t, err)
	require.Equal(t, &meowmxtype.StreamInfo{StreamID: cat("c"), Version: 3}, info)
}

// testAppendLarge appends more events at once than a statement of either
// driver takes parameters for.
func testAppendLarge[TTx any](t *testing.T, b Backend[TTx]) {
	const n = 2500
	d := b.NewDriver(t)
	p := withUUIDs(events(cat("big"), meowmxtype.NoStream, n))
	res := mustAppend(t, d.Executor(), p)
	require.Equal(t, int64(n-1), res.Events[n-1].Version)
	got := streamRead(t, d.Executor(), "big")
	require.Len(t, got, n)
	for i, e := range got {
		require.Equal(t, res.Events[i].Position, e.Position)
		require.Equal(t, uuid.UUID(p.EventUUIDs[i]), e.UUID)
	}
}

// testAppendUUIDs checks event UUIDs: stored and listed, and an append
// with a UUID already stored refused with the stream as found.
func testAppendUUIDs[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	pb := withUUIDs(events(cat("b"), meowmxtype.NoStream, 2))
	pa := withUUIDs(events(cat("a"), meowmxtype.NoStream, 2))
	rb, ra := mustAppend(t, ex, pb), mustAppend(t, ex, pa)
	mustAppend(t, ex, events(cat("plain"), meowmxtype.NoStream, 1))

	// In (aggregate_id, version) order, whatever the order asked.
	listed, err := ex.EventListByUUID(ctx, &meowmxdriver.EventListByUUIDParams{
		EventUUIDs: [][]byte{pb.EventUUIDs[1], pa.EventUUIDs[1], pb.EventUUIDs[0], pa.EventUUIDs[0]},
	})
	require.NoError(t, err)
	require.Len(t, listed, 4)
	require.Equal(t, []meowmxtype.Position{ra.Events[0].Position, ra.Events[1].Position, rb.Events[0].Position, rb.Events[1].Position}, positions(listed))
	for i, u := range [][]byte{pa.EventUUIDs[0], pa.EventUUIDs[1], pb.EventUUIDs[0], pb.EventUUIDs[1]} {
		require.Equal(t, uuid.UUID(u), listed[i].UUID)
	}
	require.Equal(t, cat("a"), listed[0].StreamID)
	require.Equal(t, "E1", listed[1].Type)
	require.Equal(t, `{"n":1}`, string(listed[1].Data))
	require.Equal(t, `{"odd":1}`, string(listed[1].Metadata))

	unknown := uuid.New()
	none, err := ex.EventListByUUID(ctx, &meowmxdriver.EventListByUUIDParams{EventUUIDs: [][]byte{unknown[:]}})
	require.NoError(t, err)
	require.Empty(t, none)

	stored := uuid.UUID(pa.EventUUIDs[0])
	for name, p := range map[string]*meowmxdriver.EventAppendParams{
		"again, at the next version": withUUIDs(events(cat("a"), meowmxtype.Exact(1), 2), uuid.UUID(pa.EventUUIDs[0]), uuid.UUID(pa.EventUUIDs[1])),
		"one of two, any version":    withUUIDs(events(cat("a"), meowmxtype.AnyVersion, 2), uuid.New(), stored),
		"in another stream":          withUUIDs(events(cat("b"), meowmxtype.StreamExists, 1), stored),
	} {
		for _, inTx := range []bool{false, true} {
			ex := d.Executor()
			var tx meowmxdriver.ExecutorTx
			if inTx {
				tx = begin(t, d)
				ex = tx
			}
			found := mustRefuse(t, ex, p)
			require.Equal(t, &meowmxtype.StreamInfo{StreamID: p.Stream, Version: 1}, found, "%s (in a transaction: %v)", name, inTx)
			if inTx {
				require.NoError(t, tx.Commit(ctx))
			}
		}
	}
	for _, inTx := range []bool{false, true} {
		ex := d.Executor()
		var tx meowmxdriver.ExecutorTx
		if inTx {
			tx = begin(t, d)
			ex = tx
		}
		found := mustRefuse(t, ex, withUUIDs(events(cat("new"), meowmxtype.NoStream, 1), stored))
		require.Nil(t, found, "a missing stream (in a transaction: %v)", inTx)
		if inTx {
			require.NoError(t, tx.Commit(ctx))
		}
	}
	require.Equal(t, int64(-2), streamVersion(t, ex, "new"), "a refused append creates no stream")
	require.Len(t, streamRead(t, ex, "a"), 2)
	require.Len(t, streamRead(t, ex, "b"), 2)
}

// testAppendDuplicateInTx appends, in a caller's transaction, at a version
// that an event written without moving es_aggregates holds: the unique
// violation is ErrDuplicate, and nothing of the append is written.
func testAppendDuplicateInTx[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	mustAppend(t, d.Executor(), events(cat("s"), meowmxtype.NoStream, 1))
	b.WriteStray(t, d, "s", 1)

	for name, p := range map[string]*meowmxdriver.EventAppendParams{
		"without UUIDs": events(cat("s"), meowmxtype.Exact(0), 2),
		"with UUIDs":    withUUIDs(events(cat("s"), meowmxtype.Exact(0), 2)),
		"any version":   events(cat("s"), meowmxtype.AnyVersion, 1),
	} {
		tx := begin(t, d)
		mustAppend(t, tx, events(cat("other-"+name), meowmxtype.NoStream, 1))
		_, err := tx.EventAppend(ctx, p)
		require.ErrorIs(t, err, meowmxdriver.ErrDuplicate, name)
		require.NoError(t, tx.Rollback(ctx), name)
		require.Equal(t, int64(0), streamVersion(t, d.Executor(), "s"), "%s: the version is not moved", name)
		evs := streamRead(t, d.Executor(), "s")
		require.Equal(t, []int64{0, 1}, versions(evs), name)
		require.Equal(t, "Stray", evs[1].Type, name)
		if p.EventUUIDs != nil {
			listed, err := d.Executor().EventListByUUID(ctx, &meowmxdriver.EventListByUUIDParams{EventUUIDs: p.EventUUIDs})
			require.NoError(t, err)
			require.Empty(t, listed, name)
		}
	}
}

// testAppendInTx checks that a caller's transaction sees its own appends,
// that they share its transaction, and that they go with its rollback.
func testAppendInTx[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	tx := begin(t, d)
	ra := mustAppend(t, tx, events(cat("a"), meowmxtype.NoStream, 1))
	rb := mustAppend(t, tx, events(cat("b"), meowmxtype.NoStream, 1))
	mustAppend(t, tx, events(cat("a"), meowmxtype.Exact(0), 1))
	require.Equal(t, int64(1), streamVersion(t, tx, "a"), "a transaction sees its own appends")
	require.Len(t, streamRead(t, tx, "a"), 2)
	require.Equal(t, &meowmxtype.StreamInfo{StreamID: cat("a"), Version: 1}, mustRefuse(t, tx, events(cat("a"), meowmxtype.Exact(0), 1)))
	require.Equal(t, ra.Events[0].Position.TransactionID, rb.Events[0].Position.TransactionID, "one transaction")
	require.NoError(t, tx.Commit(ctx))
	require.Len(t, streamRead(t, d.Executor(), "a"), 2)

	tx = begin(t, d)
	mustAppend(t, tx, events(cat("a"), meowmxtype.Exact(1), 1))
	mustAppend(t, tx, events(cat("c"), meowmxtype.NoStream, 1))
	require.NoError(t, tx.Rollback(ctx))
	require.Len(t, streamRead(t, d.Executor(), "a"), 2, "rolled back")
	require.Equal(t, int64(-2), streamVersion(t, d.Executor(), "c"), "rolled back")
}

// testAppendReorderedInTx: a caller's transaction that took its id before
// a newer one wrote a stream cannot append to that stream, whose events
// would then sort before the stream's earlier ones. It gets ErrReordered,
// and goes on.
func testAppendReorderedInTx[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	if !d.Capabilities().Horizon {
		t.Log("not applicable: without a horizon, positions follow commit order and no writer is overtaken")
		return
	}
	older := begin(t, d)
	first := mustAppend(t, older, events(cat("x"), meowmxtype.NoStream, 1)) // takes its transaction id
	mustAppend(t, d.Executor(), events(cat("s"), meowmxtype.NoStream, 1))   // a newer transaction writes s
	_, err := older.EventAppend(ctx, events(cat("s"), meowmxtype.Exact(0), 1))
	require.ErrorIs(t, err, meowmxdriver.ErrReordered)
	require.NoError(t, older.Commit(ctx), "the transaction goes on")
	got := streamRead(t, d.Executor(), "x")
	require.Equal(t, []meowmxtype.Position{first.Events[0].Position}, positions(got))
	require.Len(t, streamRead(t, d.Executor(), "s"), 1)
}
