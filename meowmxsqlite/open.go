package meowmxsqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Memory is the path that Open takes for a new, private database that is
// thrown away by Driver.Close: the thing for tests.
//
// It is not held in SQLite's memory VFS (memdb), which has no WAL: there,
// an open write transaction makes every reader wait, so a test would see
// locking that a file database does not have. It is a file in a new
// temporary directory, in WAL mode like any file, never synced to disk
// (synchronous=OFF), and removed by Close.
const Memory = ":memory:"

// Open opens the SQLite database file at path, creating it if needed, and
// returns a driver that owns it: call Driver.Close when done. Path Memory
// opens a new, private, throwaway database.
//
// The database is put in WAL mode with synchronous=NORMAL: readers do not
// block the writer nor the writer the readers, and a commit survives a
// crash of the process (a power loss may undo the last commits). Open uses
// two pools: one connection for writes and transactions, so that the
// writers of this process queue in Go, and Config.MaxReadConns read-only
// connections for reads outside transactions. Writers of other processes
// wait for each other on the busy timeout, Config.BusyTimeout.
//
// Like New, Open does not create the tables: call Driver.Migrate or
// meowmx.Store.Migrate.
func Open(ctx context.Context, path string, config *Config) (*Driver, error) {
	cfg := config.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("meowmxsqlite: Open: empty path (use meowmxsqlite.Memory for a throwaway database)")
	}
	if cfg.ReadOnly && path == Memory {
		return nil, errors.New("meowmxsqlite: Open: Config.ReadOnly on a throwaway database")
	}
	d := newDriver(nil, nil, cfg.ProbeInterval)
	d.path, d.immediate = path, true
	fail := func(err error) (*Driver, error) {
		return nil, errors.Join(fmt.Errorf("meowmxsqlite: open %s: %w", path, err), d.Close())
	}
	file, synchronous := path, "NORMAL"
	if path == Memory {
		dir, err := os.MkdirTemp("", "meowmx-sqlite-")
		if err != nil {
			return fail(err)
		}
		d.closers = append(d.closers, func() error { return os.RemoveAll(dir) })
		file, synchronous = filepath.Join(dir, "events.db"), "OFF"
	}
	d.file = file
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous("+synchronous+")")
	q.Add("_txlock", "immediate")
	if cfg.ReadOnly {
		q.Add("mode", "ro")
	}
	dsn := "file:" + (&url.URL{Path: file}).EscapedPath() + "?" + q.Encode()
	open := func(extra string, conns int) (*sql.DB, error) {
		db, err := sql.Open("sqlite", dsn+extra)
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
	var err error
	if d.db, err = open("", 1); err != nil {
		return fail(err)
	}
	d.writeStmts.db = d.db
	if !cfg.ReadOnly {
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
	d.readStmts.db = d.read
	return d, nil
}
