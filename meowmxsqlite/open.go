package meowmxsqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Memory is the path that Open takes for a new, private in-memory database.
const Memory = ":memory:"

// Open opens the SQLite database file at path, creating it if needed, and
// returns a driver that owns it: call Driver.Close when done. Path Memory
// (":memory:") opens a new in-memory database, private to this driver and
// gone when it is closed: the thing for tests.
//
// A file database is put in WAL mode with synchronous=NORMAL: readers do
// not block the writer nor the writer the readers, and a commit survives a
// crash of the process (a power loss may undo the last commits). Open uses
// two pools: one connection for writes and transactions, so that the
// writers of this process queue in Go, and Config.MaxReadConns read-only
// connections for reads outside transactions. Writers of other processes
// wait for each other on the busy timeout, Config.BusyTimeout.
//
// An in-memory database lives in SQLite's memdb VFS, shared by the
// driver's connections; it has no WAL, so a commit waits for the reads in
// progress.
//
// Like New, Open does not create the tables: call Driver.Migrate or
// meowmx.Store.Migrate.
func Open(ctx context.Context, path string, config *Config) (*Driver, error) {
	cfg := config.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("meowmxsqlite: Open: empty path (use meowmxsqlite.Memory for an in-memory database)")
	}
	memory := path == Memory
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_txlock", "immediate")
	var file string
	if memory {
		var b [8]byte
		_, _ = rand.Read(b[:])
		file = "file:/meowmx-" + hex.EncodeToString(b[:])
		q.Add("vfs", "memdb")
		cfg.MaxReadConns = max(cfg.MaxReadConns, 2)
	} else {
		file = "file:" + (&url.URL{Path: path}).EscapedPath()
		q.Add("_pragma", "synchronous(NORMAL)")
	}
	d := &Driver{path: path, immediate: true}
	open := func(extra string, conns int) (*sql.DB, error) {
		dsn := file + "?" + q.Encode() + extra
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, err
		}
		d.closers = append(d.closers, db.Close)
		db.SetMaxOpenConns(conns)
		db.SetMaxIdleConns(conns)
		if err := db.PingContext(ctx); err != nil {
			return nil, err
		}
		return db, nil
	}
	fail := func(err error) (*Driver, error) {
		return nil, errors.Join(fmt.Errorf("meowmxsqlite: open %s: %w", path, interpretError(err)), d.Close())
	}
	if memory {
		// The database lives while one connection is open: keep one.
		keeper, err := open("", 1)
		if err != nil {
			return fail(err)
		}
		conn, err := keeper.Conn(ctx)
		if err != nil {
			return fail(err)
		}
		d.closers = append(d.closers, conn.Close)
	}
	var err error
	if d.db, err = open("", 1); err != nil {
		return fail(err)
	}
	if !memory {
		var mode string
		if err := d.db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
			return fail(err)
		}
		if !strings.EqualFold(mode, "wal") {
			return fail(fmt.Errorf("journal_mode is %s, not wal", mode))
		}
	}
	if d.read, err = open("&_pragma=query_only(1)", cfg.MaxReadConns); err != nil {
		return fail(err)
	}
	return d, nil
}
