package meowmxpgx_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// pythonSetupSQL is what the Python meowmx 0.2.1 client runs to set up on
// PostgreSQL (TimSimpson/meowmx, src/meowmx/esp/migrations.py, restated):
// one statement list in one transaction, with unqualified names (its
// search_path picks the schema) and {id} its aggregate id type (UUID by
// default). Every CREATE is IF NOT EXISTS or OR REPLACE, so it keeps
// tables that exist, whatever their id type; a table it must create with
// a foreign key of another type than es_aggregates.id fails the whole
// transaction, trigger included.
const pythonSetupSQL = `
CREATE TABLE IF NOT EXISTS es_aggregates (
  id              {id}     PRIMARY KEY,
  version         INTEGER  NOT NULL,
  aggregate_type  TEXT     NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_es_aggregate_aggregate_type ON es_aggregates (aggregate_type);
CREATE TABLE IF NOT EXISTS es_events (
  id              BIGSERIAL  PRIMARY KEY,
  transaction_id  XID8       NOT NULL,
  aggregate_id    {id}       NOT NULL REFERENCES es_aggregates (id),
  version         INTEGER    NOT NULL,
  EVENT_TYPE      TEXT       NOT NULL,
  json_data       JSON       NOT NULL,
  UNIQUE (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS idx_es_event_transaction_id_id ON es_events (transaction_id, id);
CREATE INDEX IF NOT EXISTS idx_es_event_aggregate_id ON es_events (aggregate_id);
CREATE INDEX IF NOT EXISTS idx_es_event_version ON es_events (version);
CREATE TABLE IF NOT EXISTS es_aggregate_snapshot (
  aggregate_id  {id}     NOT NULL REFERENCES es_aggregates (id),
  version       INTEGER  NOT NULL,
  json_data     JSON     NOT NULL,
  PRIMARY KEY (aggregate_id, version)
);
CREATE INDEX IF NOT EXISTS idx_es_aggregate_snapshot_aggregate_id ON es_aggregate_snapshot (aggregate_id);
CREATE INDEX IF NOT EXISTS idx_es_aggregate_snapshot_version ON es_aggregate_snapshot (version);
CREATE TABLE IF NOT EXISTS es_event_subscriptions (
  subscription_name    TEXT    PRIMARY KEY,
  last_transaction_id  XID8    NOT NULL,
  last_event_id        BIGINT  NOT NULL
);
CREATE OR REPLACE FUNCTION channel_event_notify_fct()
RETURNS TRIGGER AS
  $BODY$
  DECLARE
    aggregate_type  TEXT;
  BEGIN
    SELECT a.aggregate_type INTO aggregate_type FROM es_aggregates a WHERE a.ID = NEW.aggregate_id;
    PERFORM pg_notify('channel_event_notify', aggregate_type);
    RETURN NEW;
  END;
  $BODY$
  LANGUAGE PLPGSQL;
CREATE OR REPLACE TRIGGER channel_event_notify_trg
  AFTER INSERT ON es_events
  FOR EACH ROW
  EXECUTE PROCEDURE channel_event_notify_fct();
`

// pythonConn returns a connection whose search_path is schema, as the
// Python client's engine would be configured for it.
func pythonConn(t *testing.T, pool *pgxpool.Pool, schema string) *pgxpool.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `RESET search_path`)
		conn.Release()
	})
	_, err = conn.Exec(ctx, `SET search_path TO `+pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	return conn
}

// pythonSetup runs the Python client's setup_tables(idType) in schema: one
// transaction (its conn.execute of the whole text, then commit).
func pythonSetup(t *testing.T, pool *pgxpool.Pool, schema, idType string) error {
	t.Helper()
	conn := pythonConn(t, pool, schema)
	return pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
		// The one change: the trigger function names es_aggregates with
		// its schema. Python's resolves it by the inserting session's
		// search_path (public, for the Python client), and the tests'
		// schemas are in no session's path but pythonConn's.
		sql := strings.NewReplacer("{id}", idType,
			"FROM es_aggregates a WHERE a.ID", "FROM "+pgx.Identifier{schema}.Sanitize()+".es_aggregates a WHERE a.ID").
			Replace(pythonSetupSQL)
		_, err := tx.Exec(context.Background(), sql)
		return err
	})
}

// pythonAppend writes events the way the Python client's save_events
// does, in one transaction: create_aggregate_if_absent (version -1, ON
// CONFLICT DO NOTHING), check_and_update_aggregate_version from expected
// to the last new event's version, then append_event for each event with
// pg_current_xact_id(). expected is the stream's version (Python's own
// version argument is the first new event's, expected+1). It reports false
// when the version check failed (Python raises ExpectedVersionFailure and
// rolls back).
func pythonAppend(t *testing.T, pool *pgxpool.Pool, schema, aggType, id string, expected int, payloads ...string) bool {
	t.Helper()
	ctx := context.Background()
	s := pgx.Identifier{schema}.Sanitize()
	ok := true
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.es_aggregates (id, version, aggregate_type)
				VALUES ($1, -1, $2) ON CONFLICT DO NOTHING`, id, aggType); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE `+s+`.es_aggregates SET version = $1 WHERE ID = $2 AND version = $3`,
			expected+len(payloads), id, expected)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			ok = false
			return errPythonVersion
		}
		for i, p := range payloads {
			if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.es_events (transaction_id, aggregate_id, version, event_type, json_data)
				VALUES (pg_current_xact_id(), $1, $2, $3, CAST($4 AS JSON))
				RETURNING id, transaction_id, event_type, json_data`, id, expected+1+i, "PyEvent", p); err != nil {
				return err
			}
		}
		return nil
	})
	if !ok {
		return false
	}
	require.NoError(t, err)
	return true
}

var errPythonVersion = errors.New("ExpectedVersionFailure")

// pythonEvent is an event as the Python client's subscription reads it.
type pythonEvent struct {
	ID, TxID    int64
	AggregateID string
	Version     int
	EventType   string
	JSON        string
}

// pythonBatch is one batch of the Python client's subscription loop
// (Client._handle_subscription_events, with Esp's SQL): in one transaction,
// create_subscription_if_absent, read_checkpoint_and_lock_subscription
// (FOR UPDATE SKIP LOCKED: no row when another session holds a lock on
// it), read_events_after_checkpoint (every readable event of aggregateType
// after the checkpoint), then for each of the first batchSize a
// savepoint, the handler, update_event_subscription; commit. It returns
// how many events it handled: 0 when the row was locked.
func pythonBatch(ctx context.Context, pool *pgxpool.Pool, schema, name, aggType string, batchSize int,
	handler func(tx pgx.Tx, ev pythonEvent) error) (int, error) {
	s := pgx.Identifier{schema}.Sanitize()
	n := 0
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.es_event_subscriptions (subscription_name, last_transaction_id, last_event_id)
				VALUES ($1, '0'::xid8, 0) ON CONFLICT DO NOTHING`, name); err != nil {
			return err
		}
		var lastTx string
		var lastID int64
		err := tx.QueryRow(ctx, `SELECT last_transaction_id::text AS last_transaction_id, last_event_id AS last_event_id
			FROM `+s+`.es_event_subscriptions WHERE subscription_name = $1 FOR UPDATE SKIP LOCKED`, name).Scan(&lastTx, &lastID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // locked
		}
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT e.id, e.transaction_id::text AS tx_id, e.event_type, e.json_data::text as json_data,
				e.version, e.aggregate_id
			FROM `+s+`.es_events e JOIN `+s+`.es_aggregates a ON a.ID = e.aggregate_id
			WHERE a.aggregate_type = $1
			AND (e.transaction_id, e.ID) > (CAST($2 AS xid8), $3)
			AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY e.transaction_id ASC, e.ID ASC`, aggType, lastTx, lastID)
		evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pythonEvent, error) {
			var ev pythonEvent
			var txID string
			err := r.Scan(&ev.ID, &txID, &ev.EventType, &ev.JSON, &ev.Version, &ev.AggregateID)
			if err == nil {
				_, err = fmt.Sscan(txID, &ev.TxID)
			}
			return ev, err
		})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if n >= batchSize {
				break
			}
			n++
			nested, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			if err := handler(nested, ev); err != nil {
				return err
			}
			if _, err := nested.Exec(ctx, `UPDATE `+s+`.es_event_subscriptions
				SET last_transaction_id = CAST($1 AS xid8), last_event_id = $2
				WHERE subscription_name = $3`, fmt.Sprint(ev.TxID), ev.ID, name); err != nil {
				return err
			}
			if err := nested.Commit(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
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
			require.NoError(t, pythonSetup(t, pool, schema, tc.idType))
			// A stream the Python client left at version -1 (its
			// aggregate row is written before the version check).
			emptyID := tc.newID()
			_, err := pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "es_aggregates"}.Sanitize()+` VALUES ($1, -1, 'order')`, emptyID)
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
				pgx.Identifier{schema, "es_aggregate_snapshot"}.Sanitize()).Scan(&snapshotIDType))
			require.Equal(t, strings.ToLower(strings.ReplaceAll(tc.idType, "CHAR", "character")), snapshotIDType,
				"Go's snapshots use the Python client's table")
			requireTables(t, pool, schema)
			requireNoDuplicateIndexes(t, pool, schema)
			require.NoError(t, pythonSetup(t, pool, schema, tc.idType), "Python's setup runs again on the adopted tables")
			requireNoDuplicateIndexes(t, pool, schema)

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
				require.True(t, e.RecordedAt.IsZero(), "written before adoption: its time was never recorded")
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

// requireTables checks that schema holds the snapshot table under the
// Python client's PostgreSQL name, and not Go's old one.
func requireTables(t *testing.T, pool *pgxpool.Pool, schema string) {
	t.Helper()
	var singular, plural *string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT to_regclass($1)::text, to_regclass($2)::text`,
		pgx.Identifier{schema, "es_aggregate_snapshot"}.Sanitize(), pgx.Identifier{schema, "es_aggregate_snapshots"}.Sanitize()).
		Scan(&singular, &plural))
	require.NotNil(t, singular, "es_aggregate_snapshot")
	require.Nil(t, plural, "es_aggregate_snapshots")
}

// requireNoDuplicateIndexes fails when two indexes of schema's tables have
// one definition (table, columns, operator classes, uniqueness,
// predicate), whatever their names. The Python client's own
// idx_es_event_aggregate_id (a prefix of UNIQUE (aggregate_id, version))
// is not a duplicate by that rule, nor ours.
func requireNoDuplicateIndexes(t *testing.T, pool *pgxpool.Pool, schema string) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class r ON r.oid = i.indrelid
		WHERE r.relnamespace = $1::regnamespace
		GROUP BY i.indrelid, i.indkey::text, i.indclass::text, i.indisunique, pg_get_expr(i.indpred, i.indrelid),
			pg_get_expr(i.indexprs, i.indrelid)
		HAVING count(*) > 1`, pgx.Identifier{schema}.Sanitize())
	require.NoError(t, err)
	dups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, dups, "indexes of one definition")
}

// TestPythonSetupOnGoTables: the Python client's setup runs on tables that
// Go created first, for Go's default id type and the others, and both
// clients then work on them: Python's appends (through its foreign keys
// and notify trigger), Go's snapshots in the table Python created nothing
// beside, no index twice.
func TestPythonSetupOnGoTables(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		goType, pyType string // what Go migrates with, what Python's setup is given
		newID          func() string
	}{
		{"", "UUID", uuid.NewString}, // Go's default, TEXT; Python's default
		{"UUID", "UUID", uuid.NewString},
		{"CHAR(20)", "CHAR(20)", func() string { return uuid.NewString()[:20] }},
	} {
		t.Run("go "+cmp.Or(tc.goType, "default"), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool, schema := dbtest.Schema(t)
			driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
			require.NoError(t, err)
			store, err := meowmx.NewStore(driver, nil)
			require.NoError(t, err)
			_, err = store.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: tc.goType})
			require.NoError(t, err)
			requireTables(t, pool, schema)

			require.NoError(t, pythonSetup(t, pool, schema, tc.pyType), "Python's setup accepts Go's tables")
			requireNoDuplicateIndexes(t, pool, schema)
			var trigger bool
			require.NoError(t, pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_trigger
				WHERE tgrelid = $1::regclass AND tgname = 'channel_event_notify_trg')`,
				pgx.Identifier{schema, "es_events"}.Sanitize()).Scan(&trigger))
			require.True(t, trigger, "Python's notify trigger was created")
			res, err := store.Migrate(ctx, nil)
			require.NoError(t, err)
			require.Empty(t, res.Applied)

			id := tc.newID()
			require.True(t, pythonAppend(t, pool, schema, "cat", id, -1, `{"n": 0}`))
			_, err = store.Append(ctx, meowmx.StreamID{Type: "cat", ID: id}, meowmx.Exact(0), ev("Go", `{"n": 1}`))
			require.NoError(t, err)
			evs, err := store.ReadStream(ctx, id, nil)
			require.NoError(t, err)
			require.Len(t, evs, 2)
			require.False(t, evs[0].RecordedAt.IsZero(), "Python's append after adoption has its time")

			// Go's snapshots are in es_aggregate_snapshot, which the
			// Python client also has in its schema.
			ex := driver.Executor()
			require.NoError(t, ex.SnapshotSave(ctx, &meowmxdriver.SnapshotSaveParams{AggregateID: id, Version: 1,
				Data: []byte(`{"n":1}`), AggregateType: "cat", SnapshotVersion: 1, StateShape: "x"}))
			snap, err := ex.SnapshotGetLatest(ctx, &meowmxdriver.SnapshotGetLatestParams{AggregateID: id, MaxVersion: -1})
			require.NoError(t, err)
			require.Equal(t, "cat", snap.AggregateType)
			var n int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "es_aggregate_snapshot"}.Sanitize()+
				` WHERE version = 1`).Scan(&n))
			require.Equal(t, 1, n)
		})
	}
}

// TestPythonSnapshotTableBoth: a database where Go's migrations 001-007
// made es_aggregate_snapshots and the Python client es_aggregate_snapshot:
// migration 008 moves Go's snapshots into Python's table and drops Go's.
func TestPythonSnapshotTableBoth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	require.NoError(t, pythonSetup(t, pool, schema, "UUID"))
	s := pgx.Identifier{schema}.Sanitize()
	id := uuid.NewString()
	require.True(t, pythonAppend(t, pool, schema, "cat", id, -1, `{}`))
	// Go's table as 001 and 003 made it.
	_, err := pool.Exec(ctx, `CREATE TABLE `+s+`.es_aggregate_snapshots (aggregate_id UUID NOT NULL, version INTEGER NOT NULL,
		json_data JSON NOT NULL, aggregate_type TEXT, snapshot_version INTEGER, state_shape TEXT, PRIMARY KEY (aggregate_id, version))`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO `+s+`.es_aggregate_snapshots VALUES ($1, 0, '{"go":true}', 'cat', 1, 'x'), ($1, 1, '{"go":1}', 'cat', 1, 'x')`, id)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO `+s+`.es_aggregate_snapshot VALUES ($1, 0, '{"py":true}')`, id)
	require.NoError(t, err)

	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(t, err)
	_, err = driver.Migrate(ctx, nil)
	require.NoError(t, err)
	requireTables(t, pool, schema)
	rows, err := pool.Query(ctx, `SELECT version, json_data::text, COALESCE(aggregate_type, '') FROM `+s+`.es_aggregate_snapshot ORDER BY version`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var v int
		var d, typ string
		err := r.Scan(&v, &d, &typ)
		return fmt.Sprint(v, " ", d, " ", typ), err
	})
	require.NoError(t, err)
	require.Equal(t, []string{`0 {"py":true} `, `1 {"go":1} cat`}, got, "Python's row kept, Go's moved")
}

// TestPythonSubscriptionLag: a subscription that the Python client created
// and runs has no filter in its row; its listing infers the aggregate type
// it reads from the event at its checkpoint, and counts its lag over that
// type only, and says the lag is unknown before it handled anything.
func TestPythonSubscriptionLag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(t, err)
	store, err := meowmx.NewStore(driver, nil)
	require.NoError(t, err)
	_, err = store.Migrate(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, pythonSetup(t, pool, schema, "UUID"))
	catID, dogID := uuid.NewString(), uuid.NewString()
	require.True(t, pythonAppend(t, pool, schema, "cat", catID, -1, `{}`, `{}`))
	require.True(t, pythonAppend(t, pool, schema, "dog", dogID, -1, `{}`, `{}`, `{}`))

	// A Python subscription that has not run a batch with events yet.
	_, err = pythonBatch(ctx, pool, schema, "py-new", "fish", 10, func(pgx.Tx, pythonEvent) error { return nil })
	require.NoError(t, err)
	// One that is caught up on cats, one that is half way.
	require.Eventually(t, func() bool {
		n, err := pythonBatch(ctx, pool, schema, "py-cats", "cat", 10, func(pgx.Tx, pythonEvent) error { return nil })
		require.NoError(t, err)
		return n == 2
	}, 30*time.Second, 10*time.Millisecond)
	// Python reads below the database's commit horizon, which another
	// test's transaction can hold back for a moment.
	require.Eventually(t, func() bool {
		n, err := pythonBatch(ctx, pool, schema, "py-dogs", "dog", 1, func(pgx.Tx, pythonEvent) error { return nil })
		require.NoError(t, err)
		return n == 1
	}, 30*time.Second, 10*time.Millisecond)

	subs, err := store.Subscriptions(ctx)
	require.NoError(t, err)
	byName := map[string]*meowmx.SubscriptionInfo{}
	for _, s := range subs {
		byName[s.Name] = s
	}
	require.Len(t, byName, 3)
	require.Equal(t, int64(0), byName["py-cats"].Lag, "caught up on its type")
	require.Equal(t, []string{"cat"}, byName["py-cats"].AggregateTypes)
	require.True(t, byName["py-cats"].FilterInferred)
	require.Equal(t, int64(2), byName["py-dogs"].Lag)
	require.Equal(t, []string{"dog"}, byName["py-dogs"].AggregateTypes)
	require.True(t, byName["py-new"].LagUnknown)
	require.Equal(t, int64(0), byName["py-new"].Lag, "not every event in the store")
	require.False(t, byName["py-new"].FilterInferred)
}

// TestPythonMigration008OnOldAdoption: a database that Go's migrations
// 001 to 007 adopted before migration 008 (Go-named indexes beside
// Python's, Python's events timed at the adoption, Go's plural snapshot
// table beside Python's singular) is put right by 008.
func TestPythonMigration008OnOldAdoption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	s := pgx.Identifier{schema}.Sanitize()
	require.NoError(t, pythonSetup(t, pool, schema, "UUID"))
	id := uuid.NewString()
	require.True(t, pythonAppend(t, pool, schema, "cat", id, -1, `{}`, `{}`))
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(t, err)
	_, err = driver.Migrate(ctx, nil)
	require.NoError(t, err)
	// Back to what the old 001 to 007 left.
	for _, q := range []string{
		`DELETE FROM ` + s + `.meowmx_migrations WHERE version = 8`,
		`CREATE INDEX idx_es_aggregates_aggregate_type ON ` + s + `.es_aggregates (aggregate_type)`,
		`CREATE INDEX idx_es_events_transaction_id_id ON ` + s + `.es_events (transaction_id, id)`,
		`UPDATE ` + s + `.meowmx_migrations SET applied_at = now() - interval '1 day' WHERE version = 1`,
		`UPDATE ` + s + `.es_events SET created_at = (SELECT applied_at FROM ` + s + `.meowmx_migrations WHERE version = 1)`,
		`CREATE TABLE ` + s + `.es_aggregate_snapshots (aggregate_id UUID NOT NULL, version INTEGER NOT NULL,
			json_data JSON NOT NULL, aggregate_type TEXT, snapshot_version INTEGER, state_shape TEXT, PRIMARY KEY (aggregate_id, version))`,
		`ALTER TABLE ` + s + `.es_event_subscriptions DROP COLUMN filter_stored`,
	} {
		_, err := pool.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	// A Go-written event keeps its time.
	_, err = pool.Exec(ctx, `INSERT INTO `+s+`.es_events (transaction_id, aggregate_id, version, event_type, json_data, created_at)
		VALUES (pg_current_xact_id(), $1, 2, 'Go', '{}', now())`, id)
	require.NoError(t, err)
	res, err := driver.Migrate(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []int{8}, res.Applied)
	requireTables(t, pool, schema)
	requireNoDuplicateIndexes(t, pool, schema)
	var unknown, known int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE created_at IS NULL), count(*) FILTER (WHERE created_at IS NOT NULL)
		FROM `+s+`.es_events`).Scan(&unknown, &known))
	require.Equal(t, 2, unknown, "the adoption's time is not the events' time")
	require.Equal(t, 1, known)
}
