package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
)

// FuzzAppendRead appends arbitrary events and checks that each append
// either fails with a typed error and writes nothing, or succeeds and reads
// back byte for byte, at the versions that its expected version allows.
// Inputs share one schema, so later inputs meet the streams of earlier ones.
func FuzzAppendRead(f *testing.F) {
	deep := strings.Repeat("[", 9999) + strings.Repeat("]", 9999)
	huge := strings.Repeat("x", 10000)
	// An id too long for a btree index entry, even compressed.
	var random strings.Builder
	for x := uint32(1); random.Len() < 9000; {
		x = x*1664525 + 1013904223
		random.WriteByte(byte('!' + x>>24%90))
	}
	for _, seed := range []struct {
		aggType, id, eventType string
		data, metadata         string
		withMetadata, withUUID bool
		count                  uint8
		expected               int64
	}{
		{"order", "o-1", "Placed", `{"a":1}`, ``, false, false, 0, -1},
		{"order", "o-1", "Shipped", `{"a":2}`, `{"by":"me"}`, true, false, 1, 0},
		{"order", "o-1", "Shipped", `{"a":2}`, `{"by":"me"}`, true, false, 1, 0}, // now a conflict
		{"cat", "o-1", "Meowed", `{}`, ``, false, false, 0, math.MinInt64},       // another type
		{"order", "o-1", "Paid", `1`, ``, false, true, 2, math.MinInt64 + 1},
		{"order", "o-1", "Paid", `1`, ``, false, true, 2, math.MinInt64 + 1}, // an idempotent retry
		{"", "", "", ``, ``, false, false, 0, -1},
		{"a\x00b", "id\x00", "t\x00", `"\u0000"`, `{"\u0000":null}`, true, false, 0, -1},
		{"\xff\xfe", "\xc3\x28", "\xed\xa0\x80", "\"\xff\"", `{}`, true, false, 0, -1},
		{"q'uote\"", `'; DROP TABLE es_events; --`, `"`, `"\\\""`, `[]`, true, false, 0, -1},
		{"t", "u-\u0000", "e", `"\u0000"`, ``, false, false, 0, -1},
		{"t", "nul-escape", "e", `{"k":"\u0000\ud800"}`, `"\udfff"`, true, false, 0, -1},
		{"t", "deep", "e", deep, ``, false, false, 0, -1},
		{"t", "big-number", "e", `[1e400, -1e-400, 123456789012345678901234567890]`, `1E+999`, true, false, 0, -1},
		{"t", "dup-keys", "e", `{"a":1,"a":2}`, `{"b":[],"b":{}}`, true, false, 0, -1},
		{"t", "spaces", "e", " \t\n{ \"a\" : [ 1 , 2 ] }\r\n ", `  null  `, true, false, 0, -1},
		{"t", "bad-version", "e", `{}`, ``, false, false, 0, -2},
		{"t", "max-version", "e", `{}`, ``, false, false, 0, math.MaxInt64},
		{"t", "neg-version", "e", `{}`, ``, false, false, 0, math.MinInt64 + 2},
		{"t", huge, "e", `{}`, ``, false, false, 0, -1},
		{"t", random.String(), "e", `{}`, ``, false, false, 0, -1},
		{random.String(), "huge-random-type", "e", `{}`, ``, false, false, 0, -1},
		{huge, "huge-type", huge, `{}`, ``, false, false, 0, -1},
		{"t", "empty-meta", "e", `{}`, ``, true, false, 0, -1},
		{"t", "bad-json", "e", `{"a":}`, ``, false, false, 0, -1},
		{"t", " trailing ", "e", `"☃ 🐈 \u00e9"`, ``, false, false, 0, -1},
	} {
		f.Add(seed.aggType, seed.id, seed.eventType, []byte(seed.data), []byte(seed.metadata),
			seed.withMetadata, seed.withUUID, seed.count, seed.expected)
	}

	// Every input goes to a store with TEXT ids and to one with CHAR(16)
	// ids, whose column pads, strips and may cut what it stores.
	ctx := context.Background()
	type target struct {
		store    *meowmx.Store[pgx.Tx]
		countSQL string
	}
	var targets []target
	for _, idType := range []string{"TEXT", "CHAR(16)"} {
		pool, schema := dbtest.Schema(f)
		store := storeOn(f, pool, schema, nil, nil)
		_, err := store.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: idType})
		require.NoError(f, err)
		targets = append(targets, target{store, `SELECT count(*) FROM ` + pgx.Identifier{schema, "es_events"}.Sanitize()})
	}
	pool := dbtest.Pool(f)

	f.Fuzz(func(t *testing.T, aggType, id, eventType string, data, metadata []byte,
		withMetadata, withUUID bool, count uint8, expected int64) {
		for _, tg := range targets {
			appendAndRead(t, pool, tg.store, tg.countSQL, aggType, id, eventType, data, metadata, withMetadata, withUUID, count, expected)
		}
	})
}

// appendAndRead is one input of FuzzAppendRead against one store.
func appendAndRead(t *testing.T, pool *pgxpool.Pool, store *meowmx.Store[pgx.Tx], countSQL string,
	aggType, id, eventType string, data, metadata []byte, withMetadata, withUUID bool, count uint8, expected int64) {
	t.Helper()
	ctx := context.Background()
	stream := meowmx.StreamID{Type: aggType, ID: id}
	exp := meowmx.ExpectedVersion(expected)
	events := make([]meowmx.EventData, 1+int(count%3))
	for i := range events {
		events[i] = meowmx.EventData{Type: eventType, Data: json.RawMessage(data)}
		if withMetadata {
			events[i].Metadata = json.RawMessage(metadata)
			if metadata == nil {
				events[i].Metadata = json.RawMessage{}
			}
		}
		if withUUID {
			// Deterministic, so that a repeated input is a retry.
			events[i].UUID = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%q %q %q %d %q", aggType, id, eventType, i, data))
		}
	}

	before := streamState(t, store, id)
	countBefore := countEvents(t, pool, countSQL)

	res, err := store.Append(ctx, stream, exp, events...)

	countAfter := countEvents(t, pool, countSQL)
	if err != nil {
		t.Logf("refused: %v", err)
		require.Nil(t, res)
		require.Equal(t, countBefore, countAfter, "a failed append wrote events: %v", err)
		require.Equal(t, before, streamState(t, store, id), "a failed append changed the stream: %v", err)
		switch {
		case errors.Is(err, meowmx.ErrInvalidArgument), errors.Is(err, meowmx.ErrDuplicateEvent):
		case errors.Is(err, meowmx.ErrConcurrency):
			require.True(t, before.version == nil || before.aggType == aggType, "conflict on a stream of another type: %v", err)
			require.False(t, matches(exp, before.at()), "refused although %s matches %d: %v", exp, before.at(), err)
		case errors.Is(err, meowmx.ErrAggregateTypeMismatch):
			require.NotNil(t, before.version)
			require.NotEqual(t, aggType, before.aggType)
		default:
			t.Fatalf("untyped error: %v", err)
		}
		return
	}

	t.Logf("appended at versions %d..%d", res.Events[0].Version, res.Version)
	require.Equal(t, stream, res.Stream)
	require.Len(t, res.Events, len(events))
	for i, e := range res.Events {
		require.Equal(t, res.Events[0].Version+int64(i), e.Version)
	}
	require.Equal(t, res.Events[len(events)-1].Version, res.Version)
	wrote := countAfter - countBefore
	if wrote == 0 {
		require.True(t, withUUID, "an append without UUIDs succeeded without writing")
	} else {
		require.Equal(t, int64(len(events)), wrote)
		require.True(t, before.version == nil || before.aggType == aggType)
		require.True(t, matches(exp, before.at()), "appended although %s does not match %d", exp, before.at())
		require.Equal(t, before.at()+1, res.Events[0].Version)
		require.Equal(t, streamInfo{aggType: aggType, version: &res.Version}, streamState(t, store, id))
	}
	got, err := store.ReadStream(ctx, id, &meowmx.ReadStreamOpts{From: res.Events[0].Version, Limit: len(events)})
	require.NoError(t, err)
	require.Len(t, got, len(events))
	for i, g := range got {
		require.Equal(t, stream, g.StreamID)
		require.Equal(t, res.Events[i].Version, g.Version)
		require.Equal(t, res.Events[i].Position, g.Position)
		require.Equal(t, eventType, g.Type)
		require.Equal(t, string(data), string(g.Data), "payload changed")
		require.Equal(t, events[i].Metadata == nil, g.Metadata == nil)
		require.Equal(t, string(events[i].Metadata), string(g.Metadata), "metadata changed")
		require.Equal(t, events[i].UUID, g.UUID)
	}
}

// streamInfo is what Store.Stream says of a stream; version is nil when the
// stream does not exist or its id is not valid.
type streamInfo struct {
	aggType string
	version *int64
}

// at returns the stream's version, -1 when it does not exist.
func (s streamInfo) at() int64 {
	if s.version == nil {
		return -1
	}
	return *s.version
}

func streamState(t *testing.T, store *meowmx.Store[pgx.Tx], id string) streamInfo {
	t.Helper()
	info, err := store.Stream(context.Background(), id)
	if errors.Is(err, meowmx.ErrStreamNotFound) || errors.Is(err, meowmx.ErrInvalidArgument) {
		return streamInfo{}
	}
	require.NoError(t, err)
	require.Equal(t, id, info.StreamID.ID)
	return streamInfo{aggType: info.StreamID.Type, version: &info.Version}
}

func countEvents(t *testing.T, pool *pgxpool.Pool, sql string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// matches tells whether a stream at version v (-1: none) satisfies e.
func matches(e meowmx.ExpectedVersion, v int64) bool {
	switch e {
	case meowmx.AnyVersion:
		return true
	case meowmx.StreamExists:
		return v >= 0
	}
	return int64(e) == v
}
