package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

func ev(typ, data string) meowmx.EventData {
	return meowmx.EventData{Type: typ, Data: json.RawMessage(data)}
}

func cat(id string) meowmx.StreamID { return meowmx.StreamID{Type: "cat", ID: id} }

// settleType is the aggregate type of the events that settle appends.
const settleType = "settle"

// settle waits until every event appended before the call can be read
// across streams. On PostgreSQL, reads across streams stop below the oldest
// transaction still open in the database, such as another test's: settle
// appends a marker event and waits until ReadAll returns it. Readers
// leave the markers out with others.
func settle[TTx any](t *testing.T, s *meowmx.Store[TTx]) {
	t.Helper()
	ctx := context.Background()
	res, err := s.Append(ctx, meowmx.StreamID{Type: settleType, ID: "settle-" + uuid.NewString()}, meowmx.NoStream, ev("Settled", `{}`))
	require.NoError(t, err)
	justBefore := res.Events[0].Position
	justBefore.EventID--
	require.Eventually(t, func() bool {
		evs, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{After: justBefore, AggregateTypes: []string{settleType}, Limit: 1})
		require.NoError(t, err)
		return len(evs) > 0
	}, 30*time.Second, 5*time.Millisecond)
}

// others leaves out the events of settle.
func others(evs []*meowmx.RecordedEvent) []*meowmx.RecordedEvent {
	out := []*meowmx.RecordedEvent{}
	for _, e := range evs {
		if e.StreamID.Type != settleType {
			out = append(out, e)
		}
	}
	return out
}

// countAll counts every event in the store, once all are readable.
func countAll[TTx any](t *testing.T, s *meowmx.Store[TTx]) int {
	t.Helper()
	settle(t, s)
	n := 0
	for e, err := range s.IterAll(context.Background(), nil) {
		require.NoError(t, err)
		if e.StreamID.Type != settleType {
			n++
		}
	}
	return n
}

func testAppend[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)

	id := uuid.New()
	res, err := s.Append(ctx, cat("blanco"), meowmx.NoStream,
		meowmx.EventData{Type: "Born", Data: json.RawMessage(`{"name": "Blanco",  "lives": 9}`), Metadata: json.RawMessage(`{"by":"test"}`), UUID: id},
		ev("Meowed", `"loud"`),
	)
	require.Error(t, err, "mixed UUIDs must be refused")
	require.Nil(t, res)

	res, err = s.Append(ctx, cat("blanco"), meowmx.NoStream,
		meowmx.EventData{Type: "Born", Data: json.RawMessage(`{"name": "Blanco",  "lives": 9}`), Metadata: json.RawMessage(`{"by":"test"}`), UUID: id},
		meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`"loud"`), UUID: uuid.New()},
	)
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Version)
	require.Len(t, res.Events, 2)
	require.Equal(t, int64(0), res.Events[0].Version)
	require.Equal(t, int64(1), res.Events[1].Version)
	require.Equal(t, -1, res.Events[0].Position.Compare(res.Events[1].Position))
	require.Equal(t, cat("blanco"), res.Stream)

	res2, err := s.Append(ctx, cat("blanco"), meowmx.Exact(1), ev("Slept", `{"hours": 16}`))
	require.NoError(t, err)
	require.Equal(t, int64(2), res2.Version)
	require.Equal(t, -1, res.Events[1].Position.Compare(res2.Events[0].Position))

	got, err := s.ReadStream(ctx, "blanco", nil)
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, "Born", got[0].Type)
	require.Equal(t, `{"name": "Blanco",  "lives": 9}`, string(got[0].Data), "payload is returned byte for byte")
	require.Equal(t, `{"by":"test"}`, string(got[0].Metadata))
	require.Equal(t, id, got[0].UUID)
	require.Nil(t, got[2].Metadata)
	require.Equal(t, uuid.Nil, got[2].UUID)
	require.Equal(t, cat("blanco"), got[1].StreamID)
	for i, e := range got {
		require.Equal(t, int64(i), e.Version)
		require.False(t, e.RecordedAt.IsZero())
	}
	require.Equal(t, res.Events[0].Position, got[0].Position)
	require.Equal(t, res2.Events[0].Position, got[2].Position)

	info, err := s.Stream(ctx, "blanco")
	require.NoError(t, err)
	require.Equal(t, &meowmx.StreamInfo{StreamID: cat("blanco"), Version: 2}, info)

	_, err = s.Stream(ctx, "nobody")
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound)
	none, err := s.ReadStream(ctx, "nobody", nil)
	require.NoError(t, err)
	require.Empty(t, none)

	// Ids are unique across aggregate types.
	_, err = s.Append(ctx, meowmx.StreamID{Type: "dog", ID: "blanco"}, meowmx.AnyVersion, ev("Barked", `{}`))
	require.ErrorIs(t, err, meowmx.ErrAggregateTypeMismatch)
	var te *meowmx.AggregateTypeError
	require.ErrorAs(t, err, &te)
	require.Equal(t, &meowmx.AggregateTypeError{ID: "blanco", Type: "cat", Requested: "dog"}, te)
	for _, exp := range []meowmx.ExpectedVersion{meowmx.NoStream, meowmx.StreamExists, meowmx.Exact(2)} {
		_, err = s.Append(ctx, meowmx.StreamID{Type: "dog", ID: "blanco"}, exp, ev("Barked", `{}`))
		require.ErrorIs(t, err, meowmx.ErrAggregateTypeMismatch, "expected %s", exp)
	}
	require.Equal(t, 3, countAll(t, s))
}

func testExpectedVersion[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	// "fresh" has no events; "two" is at version 2.
	_, err := s.Append(ctx, cat("two"), meowmx.NoStream, ev("A", `1`), ev("B", `2`), ev("C", `3`))
	require.NoError(t, err)

	for i, tc := range []struct {
		stream   string
		expected meowmx.ExpectedVersion
		ok       bool
		actual   int64
	}{
		{"fresh", meowmx.AnyVersion, true, 0},
		{"fresh", meowmx.NoStream, true, 0},
		{"fresh", meowmx.Exact(-1), true, 0},
		{"fresh", meowmx.StreamExists, false, -1},
		{"fresh", meowmx.Exact(0), false, -1},
		{"fresh", meowmx.Exact(5), false, -1},
		{"two", meowmx.AnyVersion, true, 0},
		{"two", meowmx.NoStream, false, 2},
		{"two", meowmx.StreamExists, true, 0},
		{"two", meowmx.Exact(2), true, 0},
		{"two", meowmx.Exact(1), false, 2},
		{"two", meowmx.Exact(3), false, 2},
	} {
		t.Run(fmt.Sprintf("%s_%s", tc.stream, tc.expected), func(t *testing.T) {
			// Each case gets its own copy of the stream.
			id := fmt.Sprintf("%s-%d", tc.stream, i)
			before := int64(-1)
			if tc.stream == "two" {
				_, err := s.Append(ctx, cat(id), meowmx.NoStream, ev("A", `1`), ev("B", `2`), ev("C", `3`))
				require.NoError(t, err)
				before = 2
			}
			res, err := s.Append(ctx, cat(id), tc.expected, ev("X", `{}`), ev("Y", `{}`))
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, before+2, res.Version)
				require.Equal(t, before+1, res.Events[0].Version)
				return
			}
			require.ErrorIs(t, err, meowmx.ErrConcurrency)
			var ce *meowmx.ConcurrencyError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, &meowmx.ConcurrencyError{Stream: cat(id), Expected: tc.expected, Actual: tc.actual}, ce)
			evs, err := s.ReadStream(ctx, id, nil)
			require.NoError(t, err)
			require.Len(t, evs, int(before+1), "a refused append writes nothing")
			if before < 0 {
				_, err := s.Stream(ctx, id)
				require.ErrorIs(t, err, meowmx.ErrStreamNotFound, "a refused append creates no stream")
			}
		})
	}
}

func testBadInput[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	_, err := s.Append(ctx, cat("exists"), meowmx.NoStream, ev("A", `{}`))
	require.NoError(t, err)
	dup := uuid.New()
	good := ev("Ok", `{}`)

	for _, tc := range []struct {
		name     string
		stream   meowmx.StreamID
		expected meowmx.ExpectedVersion
		events   []meowmx.EventData
		arg      string
	}{
		{"empty type", meowmx.StreamID{ID: "x"}, meowmx.AnyVersion, []meowmx.EventData{good}, "aggregate type"},
		{"empty id", meowmx.StreamID{Type: "cat"}, meowmx.AnyVersion, []meowmx.EventData{good}, "aggregate id"},
		{"NUL in id", cat("a\x00b"), meowmx.AnyVersion, []meowmx.EventData{good}, "aggregate id"},
		{"bad UTF-8 type", meowmx.StreamID{Type: "c\xffat", ID: "x"}, meowmx.AnyVersion, []meowmx.EventData{good}, "aggregate type"},
		{"no events", cat("exists"), meowmx.AnyVersion, nil, "events"},
		{"empty event type", cat("exists"), meowmx.AnyVersion, []meowmx.EventData{good, ev("", `{}`)}, "events[1].type"},
		{"data not JSON", cat("exists"), meowmx.AnyVersion, []meowmx.EventData{good, ev("B", `{nope}`)}, "events[1].data"},
		{"data empty", cat("exists"), meowmx.AnyVersion, []meowmx.EventData{{Type: "B"}}, "events[0].data"},
		{"data bad UTF-8", cat("exists"), meowmx.AnyVersion, []meowmx.EventData{ev("B", "\"\xff\"")}, "events[0].data"},
		{"metadata not JSON", cat("exists"), meowmx.AnyVersion, []meowmx.EventData{{Type: "B", Data: json.RawMessage(`1`), Metadata: json.RawMessage(`{`)}}, "events[0].metadata"},
		{"metadata empty", cat("exists"), meowmx.AnyVersion, []meowmx.EventData{{Type: "B", Data: json.RawMessage(`1`), Metadata: json.RawMessage{}}}, "events[0].metadata"},
		{"version below -1", cat("exists"), meowmx.Exact(-2), []meowmx.EventData{good}, "expected version"},
		{"version far below", cat("exists"), meowmx.Exact(-1000), []meowmx.EventData{good}, "expected version"},
		{"same UUID twice", cat("exists"), meowmx.AnyVersion, []meowmx.EventData{{Type: "A", Data: json.RawMessage(`1`), UUID: dup}, {Type: "B", Data: json.RawMessage(`1`), UUID: dup}}, "events[1].uuid"},
		{"UUIDs on some", cat("exists"), meowmx.AnyVersion, []meowmx.EventData{good, {Type: "B", Data: json.RawMessage(`1`), UUID: dup}}, "events[1].uuid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(ctx, tc.stream, tc.expected, tc.events...)
			require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
			var ae *meowmx.ArgumentError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.arg, ae.Arg)
		})
	}
	require.Equal(t, 1, countAll(t, s), "bad input writes nothing")

	_, err = s.ReadStream(ctx, "", nil)
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
	_, err = s.ReadStream(ctx, "exists", &meowmx.ReadStreamOpts{From: -1})
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
	_, err = s.ReadAll(ctx, &meowmx.ReadAllOpts{Limit: -1})
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
	_, err = s.ReadAll(ctx, &meowmx.ReadAllOpts{AggregateTypes: []string{""}})
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
}

func testIdempotency[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	withIDs := func(events ...meowmx.EventData) []meowmx.EventData {
		for i := range events {
			events[i].UUID = uuid.New()
		}
		return events
	}
	first := withIDs(ev("A", `{"n":1}`), ev("B", `{"n":2}`))
	res, err := s.Append(ctx, cat("idem"), meowmx.NoStream, first...)
	require.NoError(t, err)

	// The same append again, from this store and from another process.
	for _, store := range []*meowmx.Store[TTx]{s, b.Reopen(t, s)} {
		again, err := store.Append(ctx, cat("idem"), meowmx.NoStream, first...)
		require.NoError(t, err)
		require.Equal(t, res.Version, again.Version)
		require.Equal(t, res.Events[0].Position, again.Events[0].Position)
		require.Equal(t, res.Events[1].Position, again.Events[1].Position)
		again, err = store.Append(ctx, cat("idem"), meowmx.AnyVersion, first...)
		require.NoError(t, err)
		require.Equal(t, res.Events[1].Position, again.Events[1].Position)
	}

	// Later events do not change the answer.
	second := withIDs(ev("C", `{"n":3}`))
	_, err = s.Append(ctx, cat("idem"), meowmx.Exact(1), second...)
	require.NoError(t, err)
	again, err := s.Append(ctx, cat("idem"), meowmx.NoStream, first...)
	require.NoError(t, err)
	require.Equal(t, int64(1), again.Version)
	again, err = s.Append(ctx, cat("idem"), meowmx.Exact(1), second...)
	require.NoError(t, err)
	require.Equal(t, int64(2), again.Version)

	for name, events := range map[string][]meowmx.EventData{
		"other data":     {{Type: "A", Data: json.RawMessage(`{"n":9}`), UUID: first[0].UUID}, first[1]},
		"other type":     {{Type: "Z", Data: first[0].Data, UUID: first[0].UUID}, first[1]},
		"other metadata": {{Type: "A", Data: first[0].Data, Metadata: json.RawMessage(`{}`), UUID: first[0].UUID}, first[1]},
		"in part":        {first[0], withIDs(ev("B", `{"n":2}`))[0]},
		"reordered":      {first[1], first[0]},
	} {
		_, err := s.Append(ctx, cat("idem"), meowmx.NoStream, events...)
		require.ErrorIs(t, err, meowmx.ErrDuplicateEvent, name)
	}
	_, err = s.Append(ctx, cat("idem"), meowmx.Exact(0), first...)
	require.ErrorIs(t, err, meowmx.ErrDuplicateEvent, "at another version")
	_, err = s.Append(ctx, cat("elsewhere"), meowmx.AnyVersion, first...)
	require.ErrorIs(t, err, meowmx.ErrDuplicateEvent, "in another stream")
	_, err = s.Stream(ctx, "elsewhere")
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound)
	require.Equal(t, 3, countAll(t, s))
}

func testAppendTx[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)

	tx, commit, _ := begin(t, s)
	_, err := s.AppendTx(ctx, tx, cat("a"), meowmx.NoStream, ev("A", `1`))
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, cat("b"), meowmx.NoStream, ev("B", `1`))
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, cat("a"), meowmx.Exact(0), ev("A2", `2`))
	require.NoError(t, err, "a transaction sees its own appends")
	info, err := s.StreamTx(ctx, tx, "a")
	require.NoError(t, err)
	require.Equal(t, int64(1), info.Version)
	_, err = s.AppendTx(ctx, tx, cat("a"), meowmx.Exact(0), ev("A3", `3`))
	require.ErrorIs(t, err, meowmx.ErrConcurrency)
	require.NoError(t, commit(), "the store neither commits nor aborts the caller's transaction")
	a, err := s.ReadStream(ctx, "a", nil)
	require.NoError(t, err)
	require.Len(t, a, 2)
	bb, err := s.ReadStream(ctx, "b", nil)
	require.NoError(t, err)
	require.Len(t, bb, 1)
	require.Equal(t, a[0].Position.TransactionID, bb[0].Position.TransactionID, "one transaction")

	tx, _, rollback := begin(t, s)
	_, err = s.AppendTx(ctx, tx, cat("a"), meowmx.Exact(1), ev("A4", `4`))
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, cat("c"), meowmx.NoStream, ev("C", `1`))
	require.NoError(t, err)
	require.NoError(t, rollback())
	require.Equal(t, 3, countAll(t, s), "a rolled-back transaction leaves nothing")
	_, err = s.Stream(ctx, "c")
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound)
}

// testStreamOrder: a transaction that took its id before another one
// wrote a stream cannot append to that stream after it, because its events
// would sort before the stream's earlier ones in the global order that
// subscribers read. Store.Append runs such an append again in a new
// transaction; AppendTx returns ErrConcurrency, for the caller to retry.
func testStreamOrder[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	if !s.Driver().Capabilities().Horizon {
		t.Skip("one writer at a time: a transaction cannot be overtaken")
	}
	older, commit, _ := begin(t, s)
	_, err := s.AppendTx(ctx, older, cat("x"), meowmx.NoStream, ev("A", `1`)) // takes its transaction id
	require.NoError(t, err)
	_, err = s.Append(ctx, cat("s"), meowmx.NoStream, ev("B", `1`)) // a newer transaction writes s
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, older, cat("s"), meowmx.Exact(0), ev("C", `2`))
	require.ErrorIs(t, err, meowmx.ErrConcurrency)
	var ce *meowmx.ConcurrencyError
	require.ErrorAs(t, err, &ce)
	require.Error(t, ce.Err, "the stream's version is unknown: a concurrent transaction wrote it")
	require.NoError(t, commit(), "a refused append leaves the transaction usable")

	_, err = s.Append(ctx, cat("s"), meowmx.Exact(0), ev("C", `2`))
	require.NoError(t, err)
	settle(t, s)
	evs, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{AggregateTypes: []string{"cat"}})
	require.NoError(t, err)
	var versions []int64
	for _, e := range evs {
		if e.StreamID.ID == "s" {
			versions = append(versions, e.Version)
		}
	}
	require.Equal(t, []int64{0, 1}, versions, "a stream's events are in global order")
}

// testNameLimit: aggregate ids, aggregate types and event types of
// MaxNameLength bytes are stored, whatever they hold (random bytes do not
// compress, which PostgreSQL's index needs above 2.7 kB); one byte more is
// refused the same on every backend, before anything is written, with an
// error that says the limit and the length and shows only a prefix.
func testNameLimit[TTx any](t *testing.T, b Backend[TTx]) {
	s := b.NewStore(t, nil)
	ctx := context.Background()
	random := func(n int) string {
		const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
		out := make([]byte, n)
		for i := range out {
			out[i] = letters[rand.IntN(len(letters))]
		}
		return string(out)
	}
	longest := random(meowmx.MaxNameLength)
	_, err := s.Append(ctx, meowmx.StreamID{Type: longest, ID: longest}, meowmx.NoStream, ev(longest, `{}`))
	require.NoError(t, err, "names of MaxNameLength bytes are stored")
	evs, err := s.ReadStream(ctx, longest, nil)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, longest, evs[0].Type)

	tooLong := random(meowmx.MaxNameLength+1) + strings.Repeat("é", 100_000)
	for name, call := range map[string]func() error{
		"aggregate id": func() error {
			_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: tooLong}, meowmx.AnyVersion, ev("Fed", `{}`))
			return err
		},
		"aggregate type": func() error {
			_, err := s.Append(ctx, meowmx.StreamID{Type: tooLong, ID: "x"}, meowmx.AnyVersion, ev("Fed", `{}`))
			return err
		},
		"events[0].type": func() error {
			_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "x"}, meowmx.AnyVersion, ev(tooLong, `{}`))
			return err
		},
		"aggregate id (read)": func() error { _, err := s.ReadStream(ctx, tooLong, nil); return err },
	} {
		err := call()
		require.ErrorIs(t, err, meowmx.ErrNameTooLong, name)
		require.ErrorIs(t, err, meowmx.ErrInvalidArgument, name)
		var te *meowmx.NameTooLongError
		require.ErrorAs(t, err, &te, name)
		require.Equal(t, len(tooLong), te.Length)
		require.Equal(t, meowmx.MaxNameLength, te.Max)
		require.Less(t, len(err.Error()), 200, "%s: the message shows a prefix only: %s", name, err)
		require.Contains(t, err.Error(), fmt.Sprint(len(tooLong)))
		require.Contains(t, err.Error(), fmt.Sprint(meowmx.MaxNameLength))
		require.Contains(t, err.Error(), tooLong[:16])
	}
	_, err = s.Stream(ctx, "x")
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound, "nothing of the refused appends was written")
}
