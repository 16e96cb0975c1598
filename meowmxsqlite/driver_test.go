package meowmxsqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/storetest"
	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// TestConformanceNew runs the suite on a driver made by New on pools that
// the user opened: several connections whose DSN begins deferred
// transactions, and a separate read-only pool.
func TestConformanceNew(t *testing.T) {
	t.Parallel()
	newDriver := func(t *testing.T, path string) *meowmxsqlite.Driver {
		t.Helper()
		pool := func(extra string) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)"+extra)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, db.Close()) })
			db.SetMaxOpenConns(4)
			return db
		}
		d, err := meowmxsqlite.New(pool(""), &meowmxsqlite.Config{ReadDB: pool("&_pragma=query_only(1)")})
		require.NoError(t, err)
		return d
	}
	store := func(t *testing.T, d *meowmxsqlite.Driver, cfg *meowmx.Config) *meowmx.Store[*sql.Tx] {
		t.Helper()
		s, err := meowmx.NewStore(d, cfg)
		require.NoError(t, err)
		return s
	}
	var paths sync.Map // *meowmxsqlite.Driver -> file
	newStore := func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[*sql.Tx] {
		path := filepath.Join(t.TempDir(), "events.db")
		d := newDriver(t, path)
		paths.Store(d, path)
		return store(t, d, cfg)
	}
	storetest.Run(t, storetest.Backend[*sql.Tx]{
		SharedFile: true,
		NewStore: func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[*sql.Tx] {
			s := newStore(t, cfg)
			_, err := s.Migrate(context.Background(), nil)
			require.NoError(t, err)
			return s
		},
		Reopen: func(t *testing.T, s *meowmx.Store[*sql.Tx]) *meowmx.Store[*sql.Tx] {
			path, _ := paths.Load(s.Driver())
			return store(t, newDriver(t, path.(string)), nil)
		},
		NewUnmigrated: func(t *testing.T) *meowmx.Store[*sql.Tx] { return newStore(t, nil) },
	})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := meowmxsqlite.New(nil, nil)
	require.ErrorContains(t, err, "db is nil")
	_, err = meowmxsqlite.Open(ctx, "", nil)
	require.ErrorContains(t, err, "empty path")
	_, err = meowmxsqlite.Open(ctx, meowmxsqlite.Memory, &meowmxsqlite.Config{BusyTimeout: -1})
	require.ErrorContains(t, err, "Config.BusyTimeout")
	_, err = meowmxsqlite.Open(ctx, meowmxsqlite.Memory, &meowmxsqlite.Config{MaxReadConns: -1})
	require.ErrorContains(t, err, "Config.MaxReadConns")
	_, err = meowmxsqlite.Open(ctx, filepath.Join(t.TempDir(), "no", "such", "dir.db"), nil)
	require.Error(t, err)

	d, err := meowmxsqlite.Open(ctx, filepath.Join(t.TempDir(), "a b?c#d.db"), nil)
	require.NoError(t, err, "any file name")
	require.Equal(t, "sqlite", d.Name())
	caps := d.Capabilities()
	require.NotNil(t, caps.Listener, "the probe wakes subscriptions for other processes' appends")
	require.NotNil(t, caps.Browser, "the console browses SQLite too")
	caps.Listener, caps.Browser = nil, nil
	require.Equal(t, meowmxdriver.Capabilities{}, caps, "one writer: no batches, no horizon, no locks across processes")
	require.NoError(t, d.Close())
	_, err = meowmxsqlite.Open(ctx, meowmxsqlite.Memory, &meowmxsqlite.Config{ProbeInterval: -2})
	require.ErrorContains(t, err, "Config.ProbeInterval")
	d, err = meowmxsqlite.Open(ctx, meowmxsqlite.Memory, &meowmxsqlite.Config{ProbeInterval: -1})
	require.NoError(t, err)
	require.Nil(t, d.Capabilities().Listener, "no probe")
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "twice")

	s := open(t, meowmxsqlite.Memory, nil)
	_, err = s.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: "UUID"})
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument, "aggregate ids are TEXT")
	res, err := s.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: "text"})
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4, 5, 6}, res.Applied)
}

// TestMemoryIsPrivate checks that two Memory databases are apart, and
// that Close removes their files.
func TestMemoryIsPrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := open(t, meowmxsqlite.Memory, nil), open(t, meowmxsqlite.Memory, nil)
	for _, s := range []*meowmx.Store[*sql.Tx]{a, b} {
		_, err := s.Migrate(ctx, nil)
		require.NoError(t, err)
	}
	_, err := a.Append(ctx, meowmx.StreamID{Type: "cat", ID: "c"}, meowmx.NoStream, ev("A", `1`))
	require.NoError(t, err)
	_, err = b.Stream(ctx, "c")
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound)

	d, err := meowmxsqlite.Open(ctx, meowmxsqlite.Memory, nil)
	require.NoError(t, err)
	file := meowmxsqlite.FileOf(d)
	require.FileExists(t, file)
	require.NoError(t, d.Close())
	require.NoDirExists(t, filepath.Dir(file))
}

// TestPositionAfterAll checks that a position with a transaction id, which
// SQLite never gives, is after every event.
func TestPositionAfterAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, meowmxsqlite.Memory, nil)
	_, err := s.Migrate(ctx, nil)
	require.NoError(t, err)
	res, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "c"}, meowmx.NoStream, ev("A", `1`), ev("B", `2`))
	require.NoError(t, err)
	require.Zero(t, res.Events[0].Position.TransactionID)
	evs, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{After: res.Events[0].Position})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	evs, err = s.ReadAll(ctx, &meowmx.ReadAllOpts{After: meowmx.Position{TransactionID: 1}})
	require.NoError(t, err)
	require.Empty(t, evs)
}

// TestStrayEvent checks that an append that fails after moving the stream's
// version undoes all of it: on its own, and inside the caller's
// transaction, which goes on. Such a failure needs an event row that
// another client wrote without moving es_aggregates.
func TestStrayEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, meowmxsqlite.Memory, nil)
	_, err := s.Migrate(ctx, nil)
	require.NoError(t, err)
	db := s.Driver().(*meowmxsqlite.Driver).DB()
	_, err = db.ExecContext(ctx, `INSERT INTO es_aggregates (id, version, aggregate_type) VALUES ('c', -1, 'cat')`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO es_events (aggregate_id, version, event_type, json_data) VALUES ('c', 0, 'Stray', '{}')`)
	require.NoError(t, err)
	c := meowmx.StreamID{Type: "cat", ID: "c"}

	_, err = s.Append(ctx, c, meowmx.NoStream, ev("A", `1`))
	require.ErrorIs(t, err, meowmx.ErrConcurrency)
	info, err := s.Stream(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(-1), info.Version, "the version move is undone")

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	_, err = s.AppendTx(ctx, tx, meowmx.StreamID{Type: "cat", ID: "d"}, meowmx.NoStream, ev("A", `1`))
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, c, meowmx.NoStream, ev("A", `1`))
	require.ErrorIs(t, err, meowmx.ErrConcurrency)
	_, err = s.AppendTx(ctx, tx, meowmx.StreamID{Type: "cat", ID: "d"}, meowmx.Exact(0), ev("B", `2`))
	require.NoError(t, err, "the transaction goes on")
	require.NoError(t, tx.Commit())
	info, err = s.Stream(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(-1), info.Version)
	evs, err := s.ReadStream(ctx, "d", nil)
	require.NoError(t, err)
	require.Len(t, evs, 2)
}

// TestBroken checks that a transaction's connection is not broken, before
// and after a failed statement.
func TestBroken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := open(t, meowmxsqlite.Memory, nil)
	_, err := s.Migrate(ctx, nil)
	require.NoError(t, err)
	d := s.Driver()
	etx, err := d.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = etx.Rollback(ctx) }()
	require.False(t, etx.Broken())
	_, err = d.UnwrapTx(etx).ExecContext(ctx, `INSERT INTO no_such_table VALUES (1)`)
	require.Error(t, err)
	require.False(t, etx.Broken())
}

// TestReadOnly: Config.ReadOnly reads a file without writing to it (not
// even the switch to WAL mode), refuses writes, and creates no file.
func TestReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "ro.db")
	d, err := meowmxsqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	s, err := meowmx.NewStore(d, nil)
	require.NoError(t, err)
	_, err = s.Migrate(ctx, nil)
	require.NoError(t, err)
	_, err = s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "ro"}, meowmx.NoStream, meowmx.EventData{Type: "Adopted", Data: []byte(`{}`)})
	require.NoError(t, err)
	require.NoError(t, d.Close())
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	d, err = meowmxsqlite.Open(ctx, path, &meowmxsqlite.Config{ReadOnly: true})
	require.NoError(t, err)
	s, err = meowmx.NewStore(d, nil)
	require.NoError(t, err)
	evs, err := s.ReadStream(ctx, "ro", nil)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	_, err = s.Subscriptions(ctx)
	require.NoError(t, err)
	_, err = s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "ro"}, meowmx.AnyVersion, meowmx.EventData{Type: "Fed", Data: []byte(`{}`)})
	require.Error(t, err, "writes are refused")
	require.NoError(t, d.Close())
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after, "nothing was written")

	_, err = meowmxsqlite.Open(ctx, filepath.Join(dir, "none.db"), &meowmxsqlite.Config{ReadOnly: true})
	require.Error(t, err)
	require.NoFileExists(t, filepath.Join(dir, "none.db"))
	_, err = meowmxsqlite.Open(ctx, meowmxsqlite.Memory, &meowmxsqlite.Config{ReadOnly: true})
	require.Error(t, err)
}
