package meowmxsqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// BusyTimeoutDefault is the default for Config.BusyTimeout.
const BusyTimeoutDefault = 30 * time.Second

// MaxReadConnsDefault is the default for Config.MaxReadConns.
const MaxReadConnsDefault = 4

// Config configures a Driver. The zero value is valid; each field's comment
// gives its default.
type Config struct {
	// BusyTimeout is how long a connection opened by Open waits for another
	// process's write transaction before giving up with an error. Writers of
	// one process queue in Go and never reach it. New ignores it: set
	// busy_timeout in the DSN of the databases given to New. Defaults to
	// BusyTimeoutDefault.
	BusyTimeout time.Duration
	// MaxReadConns is how many connections Open opens for reads, which run
	// in parallel in WAL mode. New ignores it. Defaults to
	// MaxReadConnsDefault.
	MaxReadConns int
	// ReadDB, for New only, is a pool for reads outside transactions
	// (query_only is advised). Defaults to the pool given to New.
	ReadDB *sql.DB
	// ProbeInterval is how often a store's subscriptions, while they run,
	// look for events that other processes appended to the database file
	// (SQLite has no NOTIFY): one read of the last event id. Appends of
	// the store's own process wake them at once. Defaults to
	// ProbeIntervalDefault; -1 turns the probe off (they poll).
	ProbeInterval time.Duration
	// ReadOnly, for Open only, opens an existing file read-only (SQLite's
	// mode=ro): nothing is written to it, not even the switch to WAL mode,
	// so a file that the process may not write can be read; every write
	// fails. A file that does not exist is not created. Defaults to false.
	ReadOnly bool
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.BusyTimeout == 0 {
		out.BusyTimeout = BusyTimeoutDefault
	}
	if out.MaxReadConns == 0 {
		out.MaxReadConns = MaxReadConnsDefault
	}
	if out.ProbeInterval == 0 {
		out.ProbeInterval = ProbeIntervalDefault
	}
	return out
}

func (c *Config) validate() error {
	switch {
	case c.BusyTimeout < 0:
		return fmt.Errorf("meowmxsqlite: Config.BusyTimeout %s is negative", c.BusyTimeout)
	case c.MaxReadConns < 0:
		return fmt.Errorf("meowmxsqlite: Config.MaxReadConns %d is negative", c.MaxReadConns)
	case c.ProbeInterval < -1:
		return fmt.Errorf("meowmxsqlite: Config.ProbeInterval %s is negative (use -1 to turn the probe off)", c.ProbeInterval)
	}
	return nil
}

// Driver is the SQLite driver. It is safe for concurrent use.
type Driver struct {
	path string  // as given to Open; "" for New
	file string  // the database file that Open opened
	db   *sql.DB // writes and transactions
	// immediate is true when db's transactions begin with BEGIN
	// IMMEDIATE (Open's DSN).
	immediate bool
	read      *sql.DB       // reads outside transactions; db when not separate
	probe     time.Duration // Config.ProbeInterval; -1: none
	kick      chan struct{} // Notify wakes a Listen at once
	// writeStmts and readStmts hold statements prepared on db and read.
	writeStmts, readStmts *stmtCache

	// closers are closed by Close, last first; set by Open only.
	closers []func() error
	once    sync.Once
	closed  error
}

// New returns a driver on db, a pool opened with the "sqlite" driver of
// modernc.org/sqlite. It does no I/O; Driver.Migrate (or
// meowmx.Store.Migrate) creates the tables. Open does the same on a DSN of
// its own, with the settings below: prefer it.
//
// The DSN of db should set a busy timeout and WAL mode, and db should have
// one connection (SetMaxOpenConns(1)), so that the writers of a process
// queue in Go and no "database is locked" error reaches them:
//
//	file:app.db?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate
//
// With more connections, writers queue on SQLite's busy handler instead:
// correct, but slower under contention. Transactions that the caller
// starts on db for AppendTx should start with BEGIN IMMEDIATE
// (_txlock=immediate): a deferred transaction that reads first and writes
// later fails with SQLITE_BUSY when another connection wrote in between.
func New(db *sql.DB, config *Config) (*Driver, error) {
	if db == nil {
		return nil, errors.New("meowmxsqlite: db is nil (try meowmxsqlite.Open(ctx, path, nil))")
	}
	cfg := config.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	read := db
	if cfg.ReadDB != nil {
		read = cfg.ReadDB
	}
	return newDriver(db, read, cfg.ProbeInterval), nil
}

func newDriver(db, read *sql.DB, probe time.Duration) *Driver {
	return &Driver{db: db, read: read, probe: probe, kick: make(chan struct{}, 1), writeStmts: &stmtCache{db: db}, readStmts: &stmtCache{db: read}}
}

// DB returns the pool for writes and transactions: begin the transactions
// given to meowmx.Store.AppendTx on it.
func (d *Driver) DB() *sql.DB { return d.db }

// Path returns the path given to Open, or "" for a driver made by New.
func (d *Driver) Path() string { return d.path }

// Close closes the statements that the driver prepared, and the databases
// that Open opened; the pools given to New stay open, for their owner to
// close. Calling it again returns the first result.
func (d *Driver) Close() error {
	d.once.Do(func() {
		errs := []error{d.writeStmts.close(), d.readStmts.close()}
		for i := len(d.closers) - 1; i >= 0; i-- {
			errs = append(errs, d.closers[i]())
		}
		d.closed = errors.Join(errs...)
	})
	return d.closed
}

// Name implements meowmxdriver.Driver.
func (d *Driver) Name() string { return "sqlite" }

// Capabilities implements meowmxdriver.Driver. SQLite has one writer at a
// time, so grouping appends saves nothing; no NOTIFY, but a probe of the
// last event id wakes subscriptions for other processes' appends (unless
// Config.ProbeInterval is -1); no commit horizon, which it needs no more
// than it has.
func (d *Driver) Capabilities() meowmxdriver.Capabilities {
	c := meowmxdriver.Capabilities{Browser: browser{d}}
	if d.probe > 0 {
		c.Listener = probeListener{d: d, interval: d.probe}
	}
	return c
}

// Executor implements meowmxdriver.Driver.
func (d *Driver) Executor() meowmxdriver.Executor {
	return &executor{d: d, db: d.read}
}

// UnwrapExecutor implements meowmxdriver.Driver.
func (d *Driver) UnwrapExecutor(tx *sql.Tx) meowmxdriver.Executor {
	return &executor{d: d, db: tx, tx: tx}
}

// Begin implements meowmxdriver.Driver. The transaction holds SQLite's
// write lock from the start, whatever the DSN's _txlock, so that it never
// fails on upgrading a read to a write.
func (d *Driver) Begin(ctx context.Context) (meowmxdriver.ExecutorTx, error) {
	tx, err := d.beginWrite(ctx)
	if err != nil {
		return nil, interpretError(err)
	}
	return &executorTx{executor: executor{d: d, db: tx, tx: tx}}, nil
}

// UnwrapTx implements meowmxdriver.Driver.
func (d *Driver) UnwrapTx(tx meowmxdriver.ExecutorTx) *sql.Tx {
	return tx.(*executorTx).tx
}

// beginWrite starts a transaction that holds the write lock. On a pool
// that New was given, whose DSN may not ask for BEGIN IMMEDIATE, a no-op
// DELETE is the transaction's first statement: SQLite then takes the read
// snapshot and the write lock together and waits (busy timeout) for
// another writer, as BEGIN IMMEDIATE does.
func (d *Driver) beginWrite(ctx context.Context) (*sql.Tx, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	if d.immediate {
		return tx, nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM meowmx_migrations WHERE 0`); err != nil {
		return nil, errors.Join(fmt.Errorf("begin: %w", err), tx.Rollback())
	}
	return tx, nil
}

// dbtx is what *sql.DB and *sql.Tx have in common.
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// executor runs on the caller's transaction (tx), or on the pool (tx nil),
// where db is the read pool, which may be read-only: writes on the pool go
// through inWriteTx.
type executor struct {
	d  *Driver
	db dbtx
	tx *sql.Tx
}

type executorTx struct {
	executor
}

func (e *executorTx) Commit(ctx context.Context) error {
	if err := e.tx.Commit(); err != nil {
		return interpretError(fmt.Errorf("commit: %w", err))
	}
	return nil
}

func (e *executorTx) Rollback(ctx context.Context) error {
	if err := e.tx.Rollback(); err != nil {
		return interpretError(fmt.Errorf("rollback: %w", err))
	}
	return nil
}

// Broken implements meowmxdriver.ExecutorTx: SQLite runs in the process,
// so its connection breaks only when the driver says so, with
// driver.ErrBadConn, which a statement on the transaction then returns.
func (e *executorTx) Broken() bool {
	_, err := e.tx.Exec(`SELECT 1`)
	return errors.Is(err, driver.ErrBadConn)
}

// SubscriptionCommit implements meowmxdriver.ExecutorTx: SQLite has no
// round trips to save.
func (e *executorTx) SubscriptionCommit(ctx context.Context, p *meowmxdriver.SubscriptionCommitParams) (bool, error) {
	ok, err := e.advance(ctx, p)
	if err != nil || !ok {
		_ = e.tx.Rollback()
		return false, err
	}
	return true, e.Commit(ctx)
}

// inWriteTx runs fn in the caller's transaction, inside a savepoint so that
// a failing fn leaves the transaction as it was, or in a write transaction
// of its own, with queries prepared beforehand, that commits when fn
// returns commit true. Its errors are not interpreted yet.
func (e *executor) inWriteTx(ctx context.Context, queries []string, fn func(tx txStmts) (commit bool, err error)) error {
	if e.tx != nil {
		if _, err := e.tx.ExecContext(ctx, `SAVEPOINT meowmx_append`); err != nil {
			return err
		}
		commit, err := fn(txStmts{tx: e.tx})
		if err != nil || !commit {
			// Undo, then leave the savepoint; the caller's transaction goes on.
			ctx := context.WithoutCancel(ctx)
			_, rbErr := e.tx.ExecContext(ctx, `ROLLBACK TO meowmx_append`)
			if rbErr == nil {
				_, rbErr = e.tx.ExecContext(ctx, `RELEASE meowmx_append`)
			}
			return errors.Join(err, rbErr)
		}
		_, err = e.tx.ExecContext(ctx, `RELEASE meowmx_append`)
		return err
	}
	// Prepare before taking the write connection: preparing on the pool
	// needs a connection of it.
	prepared, err := e.d.writeStmts.prepare(ctx, queries...)
	if err != nil {
		return err
	}
	tx, err := e.d.beginWrite(ctx)
	if err != nil {
		return err
	}
	commit, err := fn(txStmts{tx: tx, prepared: prepared})
	if err != nil || !commit {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// interpretError maps database/sql and SQLite errors to meowmxdriver's.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return meowmxdriver.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		if se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
			return fmt.Errorf("%w: %w", meowmxdriver.ErrDuplicate, err)
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return fmt.Errorf("%w: %w", meowmxdriver.ErrInvalidInput, err)
		case sqlite3.SQLITE_ERROR:
			if strings.Contains(se.Error(), "no such table") {
				return fmt.Errorf("%w: %w", meowmxdriver.ErrNotMigrated, err)
			}
		}
	}
	return fmt.Errorf("meowmxsqlite: %w", err)
}
