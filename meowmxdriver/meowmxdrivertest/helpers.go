package meowmxdrivertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// cat is the stream id of aggregate type "cat".
func cat(id string) meowmxtype.StreamID { return meowmxtype.StreamID{Type: "cat", ID: id} }

// events returns the parameters of an append of n events to stream, of
// types "E0", "E1"… and data {"n":0}, {"n":1}…, the odd ones with
// metadata.
func events(stream meowmxtype.StreamID, expected meowmxtype.ExpectedVersion, n int) *meowmxdriver.EventAppendParams {
	p := &meowmxdriver.EventAppendParams{Stream: stream, Expected: expected}
	for i := range n {
		p.EventTypes = append(p.EventTypes, fmt.Sprintf("E%d", i))
		p.Data = append(p.Data, fmt.Appendf(nil, `{"n":%d}`, i))
		var meta []byte
		if i%2 == 1 {
			meta = fmt.Appendf(nil, `{"odd":%d}`, i)
		}
		p.Metadata = append(p.Metadata, meta)
	}
	return p
}

// withUUIDs gives the events of p the UUIDs given, or new ones.
func withUUIDs(p *meowmxdriver.EventAppendParams, ids ...uuid.UUID) *meowmxdriver.EventAppendParams {
	p.EventUUIDs = make([][]byte, len(p.EventTypes))
	for i := range p.EventUUIDs {
		u := uuid.New()
		if i < len(ids) {
			u = ids[i]
		}
		p.EventUUIDs[i] = u[:]
	}
	return p
}

// mustAppend runs an append that must write its events, and checks the
// result's shape.
func mustAppend(t *testing.T, ex meowmxdriver.Executor, p *meowmxdriver.EventAppendParams) *meowmxdriver.EventAppendResult {
	t.Helper()
	res, err := ex.EventAppend(context.Background(), p)
	require.NoError(t, err, "append to %s at %s", p.Stream, p.Expected)
	require.True(t, res.Appended, "append to %s at %s: refused, stream found: %+v", p.Stream, p.Expected, res.Stream)
	requireAppended(t, p, res)
	return res
}

// requireAppended checks the result of an append that wrote its events:
// one per event, at consecutive versions, in global order, in one
// transaction.
func requireAppended(t *testing.T, p *meowmxdriver.EventAppendParams, res *meowmxdriver.EventAppendResult) {
	t.Helper()
	require.Len(t, res.Events, len(p.EventTypes))
	for i, e := range res.Events {
		require.False(t, e.RecordedAt.IsZero(), "event %d: RecordedAt", i)
		require.NotZero(t, e.Position.EventID, "event %d: position", i)
		if i > 0 {
			prev := res.Events[i-1]
			require.Equal(t, prev.Version+1, e.Version, "event %d: consecutive versions", i)
			require.Equal(t, -1, prev.Position.Compare(e.Position), "event %d: in global order", i)
			require.Equal(t, prev.Position.TransactionID, e.Position.TransactionID, "event %d: one transaction", i)
			require.Equal(t, prev.RecordedAt, e.RecordedAt, "event %d: one time", i)
		}
	}
}

// mustRefuse runs an append that must be refused, and returns the stream
// that it found.
func mustRefuse(t *testing.T, ex meowmxdriver.Executor, p *meowmxdriver.EventAppendParams) *meowmxtype.StreamInfo {
	t.Helper()
	res, err := ex.EventAppend(context.Background(), p)
	require.NoError(t, err, "append to %s at %s", p.Stream, p.Expected)
	require.False(t, res.Appended, "append to %s at %s: written", p.Stream, p.Expected)
	require.Empty(t, res.Events, "a refused append has no events")
	return res.Stream
}

// streamRead reads a whole stream.
func streamRead(t *testing.T, ex meowmxdriver.Executor, id string) []*meowmxtype.RecordedEvent {
	t.Helper()
	evs, err := ex.StreamRead(context.Background(), &meowmxdriver.StreamReadParams{AggregateID: id, To: -1, Limit: 1 << 20})
	require.NoError(t, err)
	return evs
}

// streamVersion returns the version of a stream, -2 when it does not exist.
func streamVersion(t *testing.T, ex meowmxdriver.Executor, id string) int64 {
	t.Helper()
	s, err := ex.StreamGet(context.Background(), &meowmxdriver.StreamGetParams{AggregateID: id})
	if err != nil {
		require.ErrorIs(t, err, meowmxdriver.ErrNotFound)
		return -2
	}
	return s.Version
}

// readable waits until EventReadAll returns n events in all: on a driver
// with a horizon, until no transaction older than the events is open in
// the database (other tests' included). It returns them.
func readable(t *testing.T, ex meowmxdriver.Executor, n int) []*meowmxtype.RecordedEvent {
	t.Helper()
	var evs []*meowmxtype.RecordedEvent
	require.Eventually(t, func() bool {
		var err error
		evs, err = ex.EventReadAll(context.Background(), &meowmxdriver.EventReadAllParams{Limit: n + 1})
		require.NoError(t, err)
		require.LessOrEqual(t, len(evs), n, "more events than appended")
		return len(evs) == n
	}, 30*time.Second, 5*time.Millisecond, "events not readable")
	return evs
}

// positions returns the positions of events.
func positions(evs []*meowmxtype.RecordedEvent) []meowmxtype.Position {
	out := make([]meowmxtype.Position, len(evs))
	for i, e := range evs {
		out[i] = e.Position
	}
	return out
}

// versions returns the versions of events.
func versions(evs []*meowmxtype.RecordedEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}
