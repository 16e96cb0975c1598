package meowmxpgx_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
)

// requirePartitionHashes checks that every event's partition_hash is the
// hash of its aggregate id (meowmxtype.PartitionOf before the modulo),
// whoever wrote it: the store's appends and imports give it, the trigger
// fills it for the others (migration 013).
func requirePartitionHashes(t *testing.T, pool *pgxpool.Pool, schema string, events int) {
	t.Helper()
	var n, wrong int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*),
		count(*) FILTER (WHERE partition_hash IS DISTINCT FROM ('x' || left(md5(aggregate_id::text), 8))::bit(32)::bigint)
		FROM `+pgx.Identifier{schema, "es_events"}.Sanitize()).Scan(&n, &wrong))
	require.Equal(t, events, n)
	require.Zero(t, wrong, "events with a wrong partition hash")
}

// TestPartitionHashGiven: appends (one event, many, rounds of group
// commit) and imports store each event's partition hash; plain SQL
// inserts get it from the trigger.
func TestPartitionHashGiven(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	store := storeOn(t, pool, schema, nil, nil)
	_, err := store.Migrate(ctx, nil)
	require.NoError(t, err)
	ev := meowmx.EventData{Type: "E", Data: []byte(`{}`)}
	_, err = store.Append(ctx, meowmx.StreamID{Type: "t", ID: "one"}, meowmx.AnyVersion, ev)
	require.NoError(t, err)
	_, err = store.Append(ctx, meowmx.StreamID{Type: "t", ID: "many"}, meowmx.NoStream, ev, ev, ev)
	require.NoError(t, err)
	done := make(chan error, 20)
	for i := range 20 { // concurrent appends: rounds of the group commit
		go func() {
			_, err := store.Append(ctx, meowmx.StreamID{Type: "t", ID: fmt.Sprintf("round-%d", i)}, meowmx.AnyVersion, ev, ev)
			done <- err
		}()
	}
	for range 20 {
		require.NoError(t, <-done)
	}
	var file strings.Builder
	for v := range 4 {
		for i := range 3 {
			file.WriteString(fmt.Sprintf(`{"aggregate_type":"t","aggregate_id":"imported-%d","version":%d,"event_type":"E","data":{}}`+"\n", i, v))
		}
	}
	_, err = store.Import(ctx, meowmx.ReadNDJSON(strings.NewReader(file.String())), &meowmx.ImportOpts{BatchSize: 5})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "es_events"}.Sanitize()+` (transaction_id, aggregate_id, version, event_type, json_data)
		VALUES (pg_current_xact_id(), 'plain', 0, 'E', '{}')`)
	require.NoError(t, err)
	requirePartitionHashes(t, pool, schema, 1+3+40+12+1)
}

// TestPythonImport imports into the Python client's tables, whose
// es_events has a foreign key to es_aggregates: streams created by one
// batch and continued by the next are written (the batches go one at a
// time), the trigger gives their events their partition hash, and the
// Python client appends after them.
func TestPythonImport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		idType string
		newID  func() string
	}{
		{"UUID", uuid.NewString},
		{"CHAR(40)", func() string { return "short-" + uuid.NewString()[:8] }},
	} {
		t.Run(tc.idType, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool, schema := dbtest.Schema(t)
			require.NoError(t, pythonSetup(t, pool, schema, tc.idType))
			store := storeOn(t, pool, schema, nil, nil)
			_, err := store.Migrate(ctx, nil)
			require.NoError(t, err)
			ids := []string{tc.newID(), tc.newID(), tc.newID()}
			var file strings.Builder
			for v := range 5 {
				for _, id := range ids {
					file.WriteString(fmt.Sprintf(`{"aggregate_type":"order","aggregate_id":%q,"version":%d,"event_type":"E","data":{"v":%d}}`+"\n", id, v, v))
				}
			}
			res, err := store.Import(ctx, meowmx.ReadNDJSON(strings.NewReader(file.String())), &meowmx.ImportOpts{BatchSize: 2})
			require.NoError(t, err)
			require.Equal(t, &meowmx.ImportResult{Written: 15}, res)
			for _, id := range ids {
				got, err := store.ReadStream(ctx, id, nil)
				require.NoError(t, err)
				require.Len(t, got, 5)
				require.True(t, pythonAppend(t, pool, schema, "order", id, 4, `{"v": 5}`), "Python appends after the import")
			}
			requirePartitionHashes(t, pool, schema, 18)
		})
	}
}

// TestStreamUpdatesHOT: moving a stream's version writes no index entry
// (migration 014), so that imports and appends leave es_aggregates and its
// indexes small; the table keeps room on its pages for the new versions.
func TestStreamUpdatesHOT(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	store := storeOn(t, pool, schema, nil, nil)
	_, err := store.Migrate(ctx, nil)
	require.NoError(t, err)
	stream := meowmx.StreamID{Type: "t", ID: "hot"}
	ev := meowmx.EventData{Type: "E", Data: []byte(`{}`)}
	_, err = store.Append(ctx, stream, meowmx.NoStream, ev)
	require.NoError(t, err)
	table := pgx.Identifier{schema, "es_aggregates"}.Sanitize()
	var options []string
	require.NoError(t, pool.QueryRow(ctx, `SELECT reloptions FROM pg_class WHERE oid = $1::regclass`, table).Scan(&options))
	require.Contains(t, options, "fillfactor=50")
	// The counters of the transaction's own updates are read in it.
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for v := range 3 {
			if _, err := store.AppendTx(ctx, tx, stream, meowmx.Exact(int64(v)), ev); err != nil {
				return err
			}
		}
		var updated, hot int
		if err := tx.QueryRow(ctx, `SELECT pg_stat_get_xact_tuples_updated($1::regclass), pg_stat_get_xact_tuples_hot_updated($1::regclass)`,
			table).Scan(&updated, &hot); err != nil {
			return err
		}
		require.Equal(t, 3, updated)
		require.Equal(t, 3, hot, "stream updates are HOT")
		return nil
	}))
}
