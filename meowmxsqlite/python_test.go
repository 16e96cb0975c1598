package meowmxsqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// pythonSQLiteTables is the schema that the Python meowmx 0.2.1 client
// creates on SQLite (TimSimpson/meowmx, src/meowmx/sqlalchemy/tables.py,
// through SQLAlchemy's create_all), restated: CHAR(64) ids, no metadata,
// UUID or time columns, its own index names, plural snapshot table.
const pythonSQLiteTables = `
CREATE TABLE es_aggregates (
	id CHAR(64) NOT NULL,
	version INTEGER NOT NULL,
	aggregate_type TEXT NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX idx_es_aggregate_aggregate_type ON es_aggregates (aggregate_type);
CREATE TABLE es_events (
	id INTEGER NOT NULL,
	transaction_id BIGINT DEFAULT 0 NOT NULL,
	aggregate_id CHAR(64) NOT NULL,
	version INTEGER NOT NULL,
	event_type TEXT NOT NULL,
	json_data JSON NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_es_event_aggid_version UNIQUE (aggregate_id, version),
	FOREIGN KEY(aggregate_id) REFERENCES es_aggregates (id) ON DELETE CASCADE
);
CREATE INDEX idx_es_event_transaction_id_id ON es_events (transaction_id, id);
CREATE INDEX idx_es_event_aggregate_id ON es_events (aggregate_id);
CREATE INDEX idx_es_event_version ON es_events (version);
CREATE TABLE es_aggregate_snapshots (
	aggregate_id CHAR(64) NOT NULL,
	version INTEGER NOT NULL,
	json_data JSON NOT NULL,
	CONSTRAINT pk_es_aggregate_snapshot PRIMARY KEY (aggregate_id, version),
	FOREIGN KEY(aggregate_id) REFERENCES es_aggregates (id) ON DELETE CASCADE
);
CREATE TABLE es_event_subscriptions (
	subscription_name TEXT NOT NULL,
	last_transaction_id BIGINT NOT NULL,
	last_event_id BIGINT NOT NULL,
	PRIMARY KEY (subscription_name)
);
`

// pythonSQLiteAppend writes events as the Python client's SQLAlchemy
// client does: the aggregate row at -1 when absent, the version check,
// then the events naming their columns (no time, no metadata).
func pythonSQLiteAppend(t *testing.T, db *sql.DB, typ, id string, expected int, payloads ...string) {
	t.Helper()
	tx, err := db.Begin()
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	var v int
	if err := tx.QueryRow(`SELECT version FROM es_aggregates WHERE id = ?`, id).Scan(&v); err != nil {
		_, err = tx.Exec(`INSERT INTO es_aggregates (id, version, aggregate_type) VALUES (?, -1, ?)`, id, typ)
		require.NoError(t, err)
	}
	res, err := tx.Exec(`UPDATE es_aggregates SET version = ? WHERE id = ? AND version = ?`, expected+len(payloads), id, expected)
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.Equal(t, int64(1), n)
	for i, p := range payloads {
		_, err := tx.Exec(`INSERT INTO es_events (aggregate_id, version, event_type, json_data) VALUES (?, ?, ?, ?)`,
			id, expected+1+i, "PyEvent", p)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
}

func openPlain(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// schemaOf lists what a file holds: every table, index and trigger with
// its SQL.
func schemaOf(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master ORDER BY type, name`)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return strings.Join(out, "\n")
}

// TestPythonSQLiteFile: a file that the Python client created, with events
// it wrote, is adopted completely: Go reads Python's events (their time
// unknown), appends, and Python's later appends get a time; no index is
// made twice; a second Migrate changes nothing.
func TestPythonSQLiteFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "python.db")
	db := openPlain(t, path)
	_, err := db.Exec(pythonSQLiteTables)
	require.NoError(t, err)
	id := uuid.NewString()
	pythonSQLiteAppend(t, db, "cat", id, -1, `{"n": 0}`, `{"n": 1}`)
	_, err = db.Exec(`INSERT INTO es_event_subscriptions VALUES ('py-sub', 0, 1)`)
	require.NoError(t, err)

	driver, err := meowmxsqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = driver.Close() })
	store, err := meowmx.NewStore(driver, nil)
	require.NoError(t, err)
	res, err := store.Migrate(ctx, nil)
	require.NoError(t, err)
	require.NotEmpty(t, res.Applied)
	adopted := schemaOf(t, db)
	res, err = store.Migrate(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, res.Applied)
	require.Equal(t, adopted, schemaOf(t, db), "a second Migrate changes nothing")
	require.NotContains(t, adopted, "idx_es_aggregates_aggregate_type", "Python's index of that definition is kept, Go's not made")

	evs, err := store.ReadStream(ctx, id, nil)
	require.NoError(t, err, "reads need Go's columns")
	require.Len(t, evs, 2)
	require.Equal(t, `{"n": 1}`, string(evs[1].Data))
	require.True(t, evs[0].RecordedAt.IsZero(), "written before adoption: unknown")
	_, err = store.Append(ctx, meowmx.StreamID{Type: "cat", ID: id}, meowmx.Exact(1),
		meowmx.EventData{Type: "Go", Data: json.RawMessage(`{}`), Metadata: json.RawMessage(`{"by":"go"}`), UUID: uuid.New()})
	require.NoError(t, err, "appends need Go's columns")
	pythonSQLiteAppend(t, db, "cat", id, 2, `{"n": 3}`)
	evs, err = store.ReadStream(ctx, id, nil)
	require.NoError(t, err)
	require.Len(t, evs, 4)
	require.Equal(t, `{"by":"go"}`, string(evs[2].Metadata))
	require.False(t, evs[3].RecordedAt.IsZero(), "Python's append after adoption has its time")
	all, err := store.ReadAll(ctx, nil)
	require.NoError(t, err)
	require.Len(t, all, 4)
	subs, err := store.Subscriptions(ctx)
	require.NoError(t, err)
	require.Len(t, subs, 1)
}

// TestPythonSQLiteFileRefused: a file whose tables lack a column that the
// Python client has too is no meowmx file: Migrate refuses, and the file
// is as it was.
func TestPythonSQLiteFileRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "other.db")
	db := openPlain(t, path)
	_, err := db.Exec(strings.Replace(pythonSQLiteTables, "json_data JSON NOT NULL,\n\tPRIMARY KEY (id)", "payload TEXT NOT NULL,\n\tPRIMARY KEY (id)", 1))
	require.NoError(t, err)
	before := schemaOf(t, db)
	driver, err := meowmxsqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = driver.Close() })
	_, err = driver.Migrate(ctx, nil)
	require.ErrorIs(t, err, meowmxdriver.ErrInvalidInput)
	require.ErrorContains(t, err, "es_events exists without column(s) json_data")
	require.Equal(t, before, schemaOf(t, db), "nothing changed")
}

// TestPythonSQLiteSubscriptionLag: the Python client's subscription rows
// hold no filter; a listing infers it from the event at the checkpoint,
// or says the lag is unknown, never counting every event.
func TestPythonSQLiteSubscriptionLag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "python.db")
	db := openPlain(t, path)
	_, err := db.Exec(pythonSQLiteTables)
	require.NoError(t, err)
	cat, dog := uuid.NewString(), uuid.NewString()
	pythonSQLiteAppend(t, db, "cat", cat, -1, `{}`, `{}`)
	pythonSQLiteAppend(t, db, "dog", dog, -1, `{}`, `{}`, `{}`)
	var lastCat, firstDog int64
	require.NoError(t, db.QueryRow(`SELECT max(id) FROM es_events WHERE aggregate_id = ?`, cat).Scan(&lastCat))
	require.NoError(t, db.QueryRow(`SELECT min(id) FROM es_events WHERE aggregate_id = ?`, dog).Scan(&firstDog))
	_, err = db.Exec(`INSERT INTO es_event_subscriptions VALUES ('py-cats', 0, ?), ('py-dogs', 0, ?), ('py-new', 0, 0)`, lastCat, firstDog)
	require.NoError(t, err)

	driver, err := meowmxsqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = driver.Close() })
	store, err := meowmx.NewStore(driver, nil)
	require.NoError(t, err)
	_, err = store.Migrate(ctx, nil)
	require.NoError(t, err)
	subs, err := store.Subscriptions(ctx)
	require.NoError(t, err)
	by := map[string]*meowmx.SubscriptionInfo{}
	for _, s := range subs {
		by[s.Name] = s
	}
	require.Equal(t, int64(0), by["py-cats"].Lag)
	require.Equal(t, []string{"cat"}, by["py-cats"].AggregateTypes)
	require.True(t, by["py-cats"].FilterInferred)
	require.Equal(t, int64(2), by["py-dogs"].Lag)
	require.True(t, by["py-new"].LagUnknown)
	require.Equal(t, int64(0), by["py-new"].Lag)
}
