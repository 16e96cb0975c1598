package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// pythonTables is the schema that the Python meowmx 0.2 client creates
// (TimSimpson/meowmx, src/meowmx/esp/migrations.py), restated: its own
// aggregate id type, foreign keys to es_aggregates, a singular snapshot
// table, and a trigger that notifies once per inserted event. {s} is the
// quoted schema, {id} the aggregate id type.
const pythonTables = `
CREATE TABLE {s}.es_aggregates (
  id              {id}     PRIMARY KEY,
  version         INTEGER  NOT NULL,
  aggregate_type  TEXT     NOT NULL
);
CREATE INDEX idx_es_aggregate_aggregate_type ON {s}.es_aggregates (aggregate_type);
CREATE TABLE {s}.es_events (
  id              BIGSERIAL  PRIMARY KEY,
  transaction_id  XID8       NOT NULL,
  aggregate_id    {id}       NOT NULL REFERENCES {s}.es_aggregates (id),
  version         INTEGER    NOT NULL,
  event_type      TEXT       NOT NULL,
  json_data       JSON       NOT NULL,
  UNIQUE (aggregate_id, version)
);
CREATE INDEX idx_es_event_transaction_id_id ON {s}.es_events (transaction_id, id);
CREATE INDEX idx_es_event_aggregate_id ON {s}.es_events (aggregate_id);
CREATE INDEX idx_es_event_version ON {s}.es_events (version);
CREATE TABLE {s}.es_aggregate_snapshot (
  aggregate_id  {id}     NOT NULL REFERENCES {s}.es_aggregates (id),
  version       INTEGER  NOT NULL,
  json_data     JSON     NOT NULL,
  PRIMARY KEY (aggregate_id, version)
);
CREATE TABLE {s}.es_event_subscriptions (
  subscription_name    TEXT    PRIMARY KEY,
  last_transaction_id  XID8    NOT NULL,
  last_event_id        BIGINT  NOT NULL
);
CREATE FUNCTION {s}.channel_event_notify_fct() RETURNS TRIGGER AS $$
  DECLARE
    agg_type TEXT;
  BEGIN
    SELECT a.aggregate_type INTO agg_type FROM {s}.es_aggregates a WHERE a.id = NEW.aggregate_id;
    PERFORM pg_notify('channel_event_notify', agg_type);
    RETURN NEW;
  END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER channel_event_notify_trg AFTER INSERT ON {s}.es_events
  FOR EACH ROW EXECUTE PROCEDURE {s}.channel_event_notify_fct();
`

// pythonAppend writes events the way the Python client does, in one
// transaction: create the aggregate row at version -1 if absent, move its
// version from expected to the last new event's, insert the events with
// pg_current_xact_id(). It reports false when the version check failed.
func pythonAppend(t *testing.T, pool *pgxpool.Pool, schema, aggType, id string, expected int, payloads ...string) bool {
	t.Helper()
	ctx := context.Background()
	s := pgx.Identifier{schema}.Sanitize()
	ok := true
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SAVEPOINT agg`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.es_aggregates (id, version, aggregate_type) VALUES ($1, -1, $2)`, id, aggType); err != nil {
			if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT agg`); err != nil { // the row exists
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE `+s+`.es_aggregates SET version = $3 WHERE id = $1 AND version = $2`,
			id, expected, expected+len(payloads))
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			ok = false
			return nil
		}
		for i, p := range payloads {
			if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.es_events (transaction_id, aggregate_id, version, event_type, json_data)
				VALUES (pg_current_xact_id(), $1, $2, $3, $4)`, id, expected+1+i, "PyEvent", p); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	return ok
}

func TestPythonCompatibility(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		idType string
		newID  func() string
	}{
		{"UUID", uuid.NewString},
		{"CHAR(36)", func() string { return "py-" + uuid.NewString()[:30] }},
		{"CHAR(40)", func() string { return "short-" + uuid.NewString()[:8] }}, // padded by the column
	} {
		t.Run(tc.idType, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool, schema := dbtest.Schema(t)
			ddl := strings.NewReplacer("{s}", pgx.Identifier{schema}.Sanitize(), "{id}", tc.idType).Replace(pythonTables)
			_, err := pool.Exec(ctx, ddl)
			require.NoError(t, err)
			// A stream the Python client left at version -1 (its
			// aggregate row is written before the version check).
			emptyID := tc.newID()
			_, err = pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "es_aggregates"}.Sanitize()+` VALUES ($1, -1, 'order')`, emptyID)
			require.NoError(t, err)
			pyID := tc.newID()
			require.True(t, pythonAppend(t, pool, schema, "order", pyID, -1, `{"n": 0}`, `{"n": 1}`))

			driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
			require.NoError(t, err)
			store, err := meowmx.NewStore(driver, nil)
			require.NoError(t, err)
			for range 2 {
				_, err = store.Migrate(ctx, nil)
				require.NoError(t, err, "Migrate adopts the Python tables")
			}
			var snapshotIDType string
			require.NoError(t, pool.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
				WHERE attrelid = to_regclass($1) AND attname = 'aggregate_id'`,
				pgx.Identifier{schema, "es_aggregate_snapshots"}.Sanitize()).Scan(&snapshotIDType))
			require.Equal(t, strings.ToLower(strings.ReplaceAll(tc.idType, "CHAR", "character")), snapshotIDType,
				"new tables take the adopted id type")

			// Go reads what Python wrote.
			got, err := store.ReadStream(ctx, pyID, nil)
			require.NoError(t, err)
			require.Len(t, got, 2)
			for i, e := range got {
				require.Equal(t, meowmx.StreamID{Type: "order", ID: pyID}, e.StreamID)
				require.Equal(t, int64(i), e.Version)
				require.Equal(t, "PyEvent", e.Type)
				require.Equal(t, fmt.Sprintf(`{"n": %d}`, i), string(e.Data))
				require.Nil(t, e.Metadata)
				require.False(t, e.RecordedAt.IsZero())
			}
			info, err := store.Stream(ctx, pyID)
			require.NoError(t, err)
			require.Equal(t, int64(1), info.Version)

			// A -1 row is an empty stream: NoStream appends to it, once.
			info, err = store.Stream(ctx, emptyID)
			require.NoError(t, err)
			require.Equal(t, int64(-1), info.Version)
			_, err = store.Append(ctx, meowmx.StreamID{Type: "order", ID: emptyID}, meowmx.StreamExists, ev("Go", `{}`))
			require.ErrorIs(t, err, meowmx.ErrConcurrency)
			_, err = store.Append(ctx, meowmx.StreamID{Type: "cat", ID: emptyID}, meowmx.NoStream, ev("Go", `{}`))
			require.ErrorIs(t, err, meowmx.ErrAggregateTypeMismatch)
			res, err := store.Append(ctx, meowmx.StreamID{Type: "order", ID: emptyID}, meowmx.NoStream, ev("Go", `{"go": 0}`))
			require.NoError(t, err)
			require.Equal(t, int64(0), res.Version)
			_, err = store.Append(ctx, meowmx.StreamID{Type: "order", ID: emptyID}, meowmx.NoStream, ev("Go", `{}`))
			require.ErrorIs(t, err, meowmx.ErrConcurrency)

			// Go appends to Python's stream, Python to Go's, each with
			// the other's version; the stale writer is refused.
			_, err = store.Append(ctx, meowmx.StreamID{Type: "order", ID: pyID}, meowmx.Exact(1), ev("Go", `{"go": 2}`))
			require.NoError(t, err)
			require.False(t, pythonAppend(t, pool, schema, "order", pyID, 1, `{"stale": true}`))
			require.True(t, pythonAppend(t, pool, schema, "order", pyID, 2, `{"n": 3}`))
			require.True(t, pythonAppend(t, pool, schema, "order", emptyID, 0, `{"n": 1}`))
			_, err = store.Append(ctx, meowmx.StreamID{Type: "order", ID: emptyID}, meowmx.Exact(0), ev("Go", `{}`))
			require.ErrorIs(t, err, meowmx.ErrConcurrency)

			goID := tc.newID()
			_, err = store.Append(ctx, meowmx.StreamID{Type: "order", ID: goID}, meowmx.NoStream,
				meowmx.EventData{Type: "Go", Data: json.RawMessage(`{"go": 0}`), UUID: uuid.New()})
			require.NoError(t, err, "the FK and the notify trigger accept Go's single-statement append")
			require.True(t, pythonAppend(t, pool, schema, "order", goID, 0, `{"n": 1}`))

			for id, want := range map[string][]string{
				pyID:    {"PyEvent", "PyEvent", "Go", "PyEvent"},
				emptyID: {"Go", "PyEvent"},
				goID:    {"Go", "PyEvent"},
			} {
				evs, err := store.ReadStream(ctx, id, nil)
				require.NoError(t, err)
				types := []string{}
				for _, e := range evs {
					types = append(types, e.Type)
					require.Equal(t, id, e.StreamID.ID)
				}
				require.Equal(t, want, types, id)
			}
			// Reads across streams see both writers' events, in order.
			require.Eventually(t, func() bool {
				evs, err := store.ReadAll(ctx, &meowmx.ReadAllOpts{AggregateTypes: []string{"order"}})
				require.NoError(t, err)
				return len(evs) == 8
			}, 30*time.Second, 10*time.Millisecond)
		})
	}
}

func ev(typ, data string) meowmx.EventData {
	return meowmx.EventData{Type: typ, Data: json.RawMessage(data)}
}
