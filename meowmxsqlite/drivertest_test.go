package meowmxsqlite_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxdriver/meowmxdrivertest"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// TestDriverContract runs the driver-level contract suite on SQLite, each
// test on a database file of its own.
func TestDriverContract(t *testing.T) {
	t.Parallel()
	meowmxdrivertest.Exercise(t, meowmxdrivertest.Backend[*sql.Tx]{
		NewDriver: func(t *testing.T) meowmxdriver.Driver[*sql.Tx] {
			d, _ := newCountingDriver(t)
			return d
		},
		NewCountingDriver: func(t *testing.T) (meowmxdriver.Driver[*sql.Tx], *meowmxdrivertest.Counter) {
			return newCountingDriver(t)
		},
		WriteStray: func(t *testing.T, d meowmxdriver.Driver[*sql.Tx], aggregateID string, version int64) {
			t.Helper()
			_, err := d.(*meowmxsqlite.Driver).DB().ExecContext(context.Background(),
				`INSERT INTO es_events (aggregate_id, version, event_type, json_data) VALUES (?1, ?2, 'Stray', '{}')`,
				aggregateID, version)
			require.NoError(t, err)
		},
		// No Overtake: SQLite has no horizon, one writer at a time.
		Statements: meowmxdrivertest.Statements{
			// Each statement is a call of its own:
			// 1. BEGIN (database/sql BeginTx; the DSN makes it BEGIN
			//    IMMEDIATE);
			// 2. DELETE FROM meowmx_migrations WHERE 0, the no-op with which
			//    beginWrite takes the write lock on a pool given to New,
			//    which cannot tell that its DSN begins IMMEDIATE;
			// 3. the guard (UPDATE es_aggregates … RETURNING version),
			//    which returns no row;
			// 4. the stream lookup (SELECT … FROM es_aggregates);
			// 5. ROLLBACK.
			Refused: meowmxdrivertest.Sends{1, 1, 1, 1, 1},
			// 1. BEGIN; 2. the no-op DELETE; 3. the guard, which moves the
			// version; 4. INSERT INTO es_events, which fails on the unique
			// (aggregate_id, version); 5. ROLLBACK, which undoes the guard.
			Conflict: meowmxdrivertest.Sends{1, 1, 1, 1, 1},
			// As Conflict, with the UUID lookup (SELECT 1 FROM es_events
			// WHERE event_uuid IN …) before the guard.
			ConflictUUIDs: meowmxdrivertest.Sends{1, 1, 1, 1, 1, 1},
		},
	})
}

// newCountingDriver returns a driver made by New on a new database file:
// one connection for writes and transactions whose transactions begin
// IMMEDIATE, and read-only connections for reads, as Open makes them. The
// counter records every statement of both pools.
func newCountingDriver(t *testing.T) (*meowmxsqlite.Driver, *meowmxdrivertest.Counter) {
	t.Helper()
	c := &meowmxdrivertest.Counter{}
	file := "file:" + (&url.URL{Path: filepath.Join(t.TempDir(), "events.db")}).EscapedPath() + "?"
	open := func(query string, conns int) *sql.DB {
		base, err := sqlite.NewConnector(file + query)
		require.NoError(t, err)
		db := sql.OpenDB(countingConnector{Connector: base, c: c})
		t.Cleanup(func() { require.NoError(t, db.Close()) })
		db.SetMaxOpenConns(conns)
		db.SetMaxIdleConns(conns)
		return db
	}
	db := open("_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_txlock=immediate", 1)
	read := open("_pragma=busy_timeout(30000)&_pragma=query_only(1)", 4)
	d, err := meowmxsqlite.New(db, &meowmxsqlite.Config{ReadDB: read})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) }) // before the pools
	_, err = d.Migrate(context.Background(), nil)
	require.NoError(t, err)
	c.Reset()
	return d, c
}

// countingConnector opens connections of modernc.org/sqlite wrapped in
// countingConn. It registers nothing: no global state.
type countingConnector struct {
	driver.Connector
	c *meowmxdrivertest.Counter
}

func (k countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := k.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn: conn, c: k.c}, nil
}

// sqliteConn is what a connection of modernc.org/sqlite implements, and
// countingConn passes on.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// countingConn records in a Counter each statement run on a connection:
// ExecContext, QueryContext, each run of a prepared statement, BEGIN,
// COMMIT and ROLLBACK. Prepares are recorded apart; pings are not
// recorded.
type countingConn struct {
	conn driver.Conn
	c    *meowmxdrivertest.Counter
}

var _ sqliteConn = (*countingConn)(nil)

func (w *countingConn) inner() sqliteConn { return w.conn.(sqliteConn) }

// Unwrap returns the connection of modernc.org/sqlite, as its
// NewConnector asks of wrappers.
func (w *countingConn) Unwrap() driver.Conn { return w.conn }

func (w *countingConn) Prepare(query string) (driver.Stmt, error) {
	return w.PrepareContext(context.Background(), query)
}

func (w *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	w.c.Prepare(query)
	s, err := w.inner().PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &countingStmt{stmt: s, query: query, c: w.c}, nil
}

func (w *countingConn) Close() error { return w.conn.Close() }

func (w *countingConn) Begin() (driver.Tx, error) {
	return w.BeginTx(context.Background(), driver.TxOptions{})
}

func (w *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	w.c.Statement("BEGIN")
	tx, err := w.inner().BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return countingTx{tx: tx, c: w.c}, nil
}

func (w *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	w.c.Statement(query)
	return w.inner().ExecContext(ctx, query, args)
}

func (w *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	w.c.Statement(query)
	return w.inner().QueryContext(ctx, query, args)
}

func (w *countingConn) Ping(ctx context.Context) error { return w.inner().Ping(ctx) }

func (w *countingConn) ResetSession(ctx context.Context) error { return w.inner().ResetSession(ctx) }

func (w *countingConn) IsValid() bool { return w.inner().IsValid() }

// countingTx records COMMIT and ROLLBACK.
type countingTx struct {
	tx driver.Tx
	c  *meowmxdrivertest.Counter
}

func (t countingTx) Commit() error {
	t.c.Statement("COMMIT")
	return t.tx.Commit()
}

func (t countingTx) Rollback() error {
	t.c.Statement("ROLLBACK")
	return t.tx.Rollback()
}

// countingStmt records each run of a prepared statement.
type countingStmt struct {
	stmt  driver.Stmt
	query string
	c     *meowmxdrivertest.Counter
}

var (
	_ driver.StmtExecContext  = (*countingStmt)(nil)
	_ driver.StmtQueryContext = (*countingStmt)(nil)
)

// Exec and Query are those of driver.Stmt, which database/sql calls
// only when the statement lacks the context ones.

func (s *countingStmt) Close() error  { return s.stmt.Close() }
func (s *countingStmt) NumInput() int { return s.stmt.NumInput() }

func (s *countingStmt) Exec(args []driver.Value) (driver.Result, error) {
	s.c.Statement(s.query)
	return s.stmt.Exec(args) //nolint:staticcheck // passed on
}

func (s *countingStmt) Query(args []driver.Value) (driver.Rows, error) {
	s.c.Statement(s.query)
	return s.stmt.Query(args) //nolint:staticcheck // passed on
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.Statement(s.query)
	return s.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.Statement(s.query)
	return s.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// TestStoreAppendSentOnce checks that an append that fails on a store
// reaches the database once: SQLite appends without group commit, each
// Store.Append is one EventAppend, and a unique violation is final.
func TestStoreAppendSentOnce(t *testing.T) {
	t.Parallel()
	for _, withUUID := range []bool{false, true} {
		t.Run(fmt.Sprintf("UUIDs=%v", withUUID), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d, c := newCountingDriver(t)
			store, err := meowmx.NewStore(d, nil)
			require.NoError(t, err)
			s := meowmx.StreamID{Type: "cat", ID: "s"}
			ev := func() meowmx.EventData {
				e := meowmx.EventData{Type: "E", Data: json.RawMessage(`{}`)}
				if withUUID {
					e.UUID = uuid.New()
				}
				return e
			}
			_, err = store.Append(ctx, s, meowmx.NoStream, ev())
			require.NoError(t, err)
			_, err = d.DB().ExecContext(ctx, `INSERT INTO es_events (aggregate_id, version, event_type, json_data) VALUES ('s', 1, 'Stray', '{}')`)
			require.NoError(t, err)

			c.Reset()
			_, err = store.Append(ctx, s, meowmx.Exact(0), ev())
			require.ErrorIs(t, err, meowmx.ErrConcurrency)
			require.ErrorIs(t, err, meowmxdriver.ErrDuplicate)
			guards, inserts := 0, 0
			for _, q := range c.Statements() {
				switch {
				case strings.HasPrefix(q, "UPDATE es_aggregates"):
					guards++
				case strings.HasPrefix(q, "INSERT INTO es_events"):
					inserts++
				}
			}
			require.Equal(t, []int{1, 1}, []int{guards, inserts}, "one append: its guard and its INSERT, once; statements sent:\n%s", c)
			// BEGIN, the no-op DELETE, (the UUID lookup,) the guard, the
			// INSERT, ROLLBACK: the store reads nothing for a unique
			// violation.
			want := meowmxdrivertest.Sends{1, 1, 1, 1, 1}
			if withUUID {
				want = append(want, 1)
			}
			require.Equal(t, want, c.Sends(), "statements sent:\n%s", c)
			info, err := store.Stream(ctx, "s")
			require.NoError(t, err)
			require.Equal(t, int64(0), info.Version, "nothing written")
		})
	}
}
