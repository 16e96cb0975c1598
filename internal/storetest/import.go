package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

// ndjson writes events as `meowmx read --json` prints them.
func ndjson(t *testing.T, evs []*meowmx.RecordedEvent) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	for _, e := range evs {
		line := map[string]any{"position": e.Position, "aggregate_type": e.StreamID.Type, "aggregate_id": e.StreamID.ID,
			"version": e.Version, "event_type": e.Type, "data": e.Data, "recorded_at": e.RecordedAt}
		if e.Metadata != nil {
			line["metadata"] = e.Metadata
		}
		if e.UUID != (uuid.UUID{}) {
			line["uuid"] = e.UUID.String()
		}
		j, err := json.Marshal(line)
		require.NoError(t, err)
		b.Write(append(j, '\n'))
	}
	return &b
}

// readAllEvents reads the store's n events, once other tests' open
// transactions let the commit horizon pass them, and checks there are no
// more.
func readAllEvents[TTx any](t *testing.T, s *meowmx.Store[TTx], n int) []*meowmx.RecordedEvent {
	t.Helper()
	var out []*meowmx.RecordedEvent
	require.Eventually(t, func() bool {
		out = nil
		for e, err := range s.IterAll(context.Background(), nil) {
			require.NoError(t, err)
			out = append(out, e)
		}
		return len(out) >= n
	}, 30*time.Second, 10*time.Millisecond)
	require.Len(t, out, n)
	return out
}

// testImport moves a store's events into another through NDJSON (COPY on
// PostgreSQL, batched inserts on SQLite): every
// event keeps its stream, version, type, data, metadata, UUID and time,
// and the global order; importing again writes nothing; a stream stored
// in part gets the rest; bad batches are refused whole.
func testImport[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	src, dst := b.NewStore(t, nil), b.NewStore(t, nil)
	for i := range 20 {
		e := meowmx.EventData{Type: "E", Data: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i))}
		if i%3 == 0 {
			e.Metadata = json.RawMessage(`{"m": 1}`)
		}
		if i%2 == 0 {
			e.UUID = uuid.New()
		}
		_, err := src.Append(ctx, meowmx.StreamID{Type: fmt.Sprintf("t%d", i%2), ID: fmt.Sprintf("s%d", i%4)}, meowmx.AnyVersion, e)
		require.NoError(t, err)
	}
	want := readAllEvents(t, src, 20)
	// dst holds the first two events of s0 already.
	s0, err := src.ReadStream(ctx, "s0", &meowmx.ReadStreamOpts{Limit: 2})
	require.NoError(t, err)
	for _, e := range s0 {
		_, err := dst.Append(ctx, e.StreamID, meowmx.Exact(e.Version-1), meowmx.EventData{Type: e.Type, Data: e.Data, Metadata: e.Metadata, UUID: e.UUID})
		require.NoError(t, err)
	}
	file := ndjson(t, want).Bytes()
	var progress []meowmx.ImportResult
	res, err := dst.Import(ctx, meowmx.ReadNDJSON(bytes.NewReader(file)), &meowmx.ImportOpts{BatchSize: 3,
		Progress: func(r meowmx.ImportResult) { progress = append(progress, r) }})
	require.NoError(t, err)
	require.Equal(t, &meowmx.ImportResult{Written: 18, Skipped: 2}, res)
	require.Len(t, progress, 7, "one call per batch")

	got := readAllEvents(t, dst, 20)
	strip := func(evs []*meowmx.RecordedEvent) []meowmx.RecordedEvent {
		var out []meowmx.RecordedEvent
		for _, e := range evs {
			c := *e
			c.Position = meowmx.Position{}
			c.RecordedAt = c.RecordedAt.UTC()
			// read --json prints payloads compacted (json.Marshal).
			var b bytes.Buffer
			require.NoError(t, json.Compact(&b, c.Data))
			c.Data = b.Bytes()
			if c.Metadata != nil {
				var m bytes.Buffer
				require.NoError(t, json.Compact(&m, c.Metadata))
				c.Metadata = m.Bytes()
			}
			out = append(out, c)
		}
		return out
	}
	// The first two events of s0 were appended to dst first; the others
	// follow in the file's order.
	var order []meowmx.RecordedEvent
	order = append(order, strip(s0)...)
	for _, e := range strip(want) {
		if !(e.StreamID.ID == "s0" && e.Version < 2) {
			order = append(order, e)
		}
	}
	gotStripped := strip(got)
	require.Equal(t, order[2:], gotStripped[2:], "streams, versions, data, metadata, UUIDs, times and order kept")
	for _, id := range []string{"s0", "s1", "s2", "s3"} {
		st, err := dst.Stream(ctx, id)
		require.NoError(t, err)
		require.Equal(t, int64(4), st.Version, "stream %s", id)
	}

	// Again: nothing written.
	res, err = dst.Import(ctx, meowmx.ReadNDJSON(bytes.NewReader(file)), nil)
	require.NoError(t, err)
	require.Equal(t, &meowmx.ImportResult{Skipped: 20}, res)
	readAllEvents(t, dst, 20)

	// The store stays writable at the imported versions.
	_, err = dst.Append(ctx, meowmx.StreamID{Type: "t1", ID: "s1"}, meowmx.Exact(4), meowmx.EventData{Type: "E", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)

	for _, tc := range []struct{ name, lines string }{
		{"gap", `{"aggregate_type":"t","aggregate_id":"g","version":0,"event_type":"E","data":{}}
{"aggregate_type":"t","aggregate_id":"g","version":2,"event_type":"E","data":{}}`},
		{"past the stored version", `{"aggregate_type":"t1","aggregate_id":"s1","version":7,"event_type":"E","data":{}}`},
		{"another type", `{"aggregate_type":"t0","aggregate_id":"s1","version":6,"event_type":"E","data":{}}`},
		{"a version twice", `{"aggregate_type":"t","aggregate_id":"r","version":0,"event_type":"E","data":{}}
{"aggregate_type":"t","aggregate_id":"q","version":0,"event_type":"E","data":{}}
{"aggregate_type":"t","aggregate_id":"r","version":0,"event_type":"E","data":{}}`},
		{"two types in a batch", `{"aggregate_type":"t","aggregate_id":"m","version":0,"event_type":"E","data":{}}
{"aggregate_type":"u","aggregate_id":"m","version":1,"event_type":"E","data":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dst.Import(ctx, meowmx.ReadNDJSON(bytes.NewReader([]byte(tc.lines))), nil)
			require.ErrorIs(t, err, meowmx.ErrImportRefused)
		})
	}
	readAllEvents(t, dst, 21) // refused batches write nothing
	_, err = dst.Stream(ctx, "g")
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound)

	_, err = dst.Import(ctx, meowmx.ReadNDJSON(bytes.NewReader([]byte("{\"aggregate_type\":\"t\"}\n"))), nil)
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
	_, err = dst.Import(ctx, meowmx.ReadNDJSON(bytes.NewReader([]byte(`{"aggregate_type":"t","aggregate_id":"x","version":0,"event_type":"E","data":{"a":}}`))), nil)
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
}

// importLine is a line of NDJSON for Import.
func importLine(typ, id string, version int, u uuid.UUID) string {
	line := fmt.Sprintf(`{"aggregate_type":%q,"aggregate_id":%q,"version":%d,"event_type":"E","data":{"v":%d}`, typ, id, version, version)
	if u != (uuid.UUID{}) {
		line += fmt.Sprintf(`,"uuid":%q`, u)
	}
	return line + "}\n"
}

// testImportBatches imports many small batches whose streams run across
// batches (PostgreSQL has two batches in flight): every event is read
// back in the file's order, at its version, by a reader following the
// store while the import runs; a batch refused, or failing on a UUID
// stored by the batch just before, leaves the batches before it written
// and none after it.
func testImportBatches[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	const streams, versions = 7, 60
	var file bytes.Buffer
	for v := range versions {
		for i := range streams {
			file.WriteString(importLine("t", fmt.Sprintf("s%d", i), v, uuid.New()))
		}
	}
	// A reader follows the store while the import runs: it must see every
	// event once, in the file's order (no event skipped for one committed
	// later with a lower id).
	followCtx, stop := context.WithCancel(ctx)
	defer stop()
	seen := make(chan []*meowmx.RecordedEvent, 1)
	go func() {
		var got []*meowmx.RecordedEvent
		for e, err := range s.IterAll(followCtx, &meowmx.ReadAllOpts{Follow: true}) {
			if err != nil {
				break
			}
			if got = append(got, e); len(got) == streams*versions {
				break
			}
		}
		seen <- got
	}()
	res, err := s.Import(ctx, meowmx.ReadNDJSON(bytes.NewReader(file.Bytes())), &meowmx.ImportOpts{BatchSize: 5})
	require.NoError(t, err)
	require.Equal(t, &meowmx.ImportResult{Written: streams * versions}, res)
	var got []*meowmx.RecordedEvent
	select {
	case got = <-seen:
	case <-time.After(time.Minute):
		t.Fatal("the reader did not see every event")
	}
	require.Len(t, got, streams*versions)
	for n, e := range got {
		require.Equal(t, fmt.Sprintf("s%d", n%streams), e.StreamID.ID, "event %d", n)
		require.Equal(t, int64(n/streams), e.Version, "event %d", n)
		if n > 0 {
			require.Positive(t, e.Position.Compare(got[n-1].Position), "positions in the file's order")
		}
	}
	for i := range streams {
		st, err := s.Stream(ctx, fmt.Sprintf("s%d", i))
		require.NoError(t, err)
		require.Equal(t, int64(versions-1), st.Version)
	}

	// Batches of 2: the third is refused (a gap); the fourth is fine but
	// comes after it.
	refused := importLine("u", "a", 0, uuid.Nil) + importLine("u", "b", 0, uuid.Nil) +
		importLine("u", "a", 1, uuid.Nil) + importLine("u", "b", 1, uuid.Nil) +
		importLine("u", "a", 3, uuid.Nil) + importLine("u", "b", 2, uuid.Nil) +
		importLine("u", "c", 0, uuid.Nil) + importLine("u", "c", 1, uuid.Nil)
	var progress []meowmx.ImportResult
	res, err = s.Import(ctx, meowmx.ReadNDJSON(strings.NewReader(refused)), &meowmx.ImportOpts{BatchSize: 2,
		Progress: func(r meowmx.ImportResult) { progress = append(progress, r) }})
	require.ErrorIs(t, err, meowmx.ErrImportRefused)
	require.Equal(t, &meowmx.ImportResult{Written: 4}, res)
	require.Equal(t, []meowmx.ImportResult{{Written: 2}, {Written: 4}}, progress)
	for id, want := range map[string]int64{"a": 1, "b": 1} {
		st, err := s.Stream(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, st.Version, "stream %s", id)
	}
	_, err = s.Stream(ctx, "c")
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound, "no batch after the refused one is written")

	// The second batch repeats, first, the UUID of the first batch's last
	// event, under another stream: run in parallel, the first batch would
	// wait for the second's row with it, the second for the first's commit.
	u := uuid.New()
	var dupFile strings.Builder
	for v := range 999 {
		dupFile.WriteString(importLine("w", "x", v, uuid.Nil))
	}
	dupFile.WriteString(importLine("w", "y", 0, u))
	dupFile.WriteString(importLine("w", "z", 0, u))
	for v := 1; v < 1000; v++ {
		dupFile.WriteString(importLine("w", "z", v, uuid.Nil))
	}
	dupFile.WriteString(importLine("w", "q", 0, uuid.Nil))
	dup := dupFile.String()
	dupCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = s.Import(dupCtx, meowmx.ReadNDJSON(strings.NewReader(dup)), &meowmx.ImportOpts{BatchSize: 1000})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cancel() // the server's statements end, and the import with them
		<-done
		t.Fatal("an import with a UUID shared by two batches hangs")
	}
	var de *meowmx.DuplicateEventError
	require.ErrorAs(t, err, &de)
	require.ErrorIs(t, err, meowmx.ErrDuplicateEvent)
	require.Equal(t, u, de.UUID)
	require.Equal(t, "is stored in stream w/y", de.Reason)
	require.Equal(t, &meowmx.ImportResult{Written: 1000}, res)
	for id, want := range map[string]int64{"x": 998, "y": 0} {
		st, err := s.Stream(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, st.Version, "stream %s", id)
	}
	for _, id := range []string{"z", "q"} {
		_, err = s.Stream(ctx, id)
		require.ErrorIs(t, err, meowmx.ErrStreamNotFound, "stream %s", id)
	}

	// A UUID twice in one batch, and one stored at another version of
	// its stream: each refused with its UUID, and nothing written.
	u2 := uuid.New()
	for _, tc := range []struct{ name, file, reason string }{
		{"twice", importLine("w", "t1", 0, u2) + importLine("w", "t2", 0, u2), "is twice in one batch of the import"},
		{"another version", importLine("w", "y", 1, uuid.Nil) + importLine("w", "y", 2, u), "is stored at version 0, not 2"},
	} {
		res, err := s.Import(ctx, meowmx.ReadNDJSON(strings.NewReader(tc.file)), nil)
		require.ErrorAs(t, err, &de, tc.name)
		require.Equal(t, tc.reason, de.Reason, tc.name)
		require.Equal(t, &meowmx.ImportResult{}, res, tc.name)
	}
	st, err := s.Stream(ctx, "y")
	require.NoError(t, err)
	require.Equal(t, int64(0), st.Version, "nothing written")
}
