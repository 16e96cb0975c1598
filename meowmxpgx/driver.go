// Package meowmxpgx runs meowmx on PostgreSQL through a pgx v5 pool.
//
//	pool, err := pgxpool.New(ctx, "postgres://localhost/app")
//	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: "events"})
//	store, err := meowmx.NewStore(driver, nil)
//
// Every append is one statement, sent in one round trip. Concurrent
// appends grouped by the store (meowmx.GroupCommitConfig) go in one
// transaction and one round trip: appends to distinct streams as one
// statement over arrays (in a transaction of its own), or, when a stream
// has several appends in the batch, BEGIN, a statement per round of
// distinct streams, COMMIT. So that two batches sharing streams never wait
// for each other in a cycle, a round statement that updates existing
// streams first takes a transaction-scoped advisory lock per stream, keyed
// hashtextextended(aggregate id, 7235960), in key order.
//
// Reads across streams return only events below
// pg_snapshot_xmin(pg_current_snapshot()), so a reader paging forward by
// (transaction_id, id) never skips an event that commits late.
//
// A stream's events also sort in version order by (transaction_id, id):
// an append refuses to write under an older transaction id than the
// stream's last writer's (es_aggregates.last_transaction_id). Such an
// append, out of a caller's transaction, is run again in a transaction
// that locks the stream before it takes its id, which therefore comes
// after the last writer's.
package meowmxpgx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meowmx/meowmx/meowmxdriver"
)

var (
	_ meowmxdriver.Driver[pgx.Tx] = (*Driver)(nil)
	_ meowmxdriver.BatchAppender  = (*Driver)(nil)
	_ meowmxdriver.ExecutorTx     = (*executorTx)(nil)
)

// SchemaDefault is the PostgreSQL schema used when Config.Schema is empty.
const SchemaDefault = "public"

// Config configures a Driver. The zero value is valid.
type Config struct {
	// Schema is the PostgreSQL schema (namespace) holding the tables. It is
	// always quoted in SQL, so any name is safe; it must be 1 to 63 bytes
	// without NUL. Defaults to SchemaDefault.
	Schema string
	// DisableNotify turns LISTEN/NOTIFY off: appends send no notifications
	// and subscriptions poll. Set it behind a transaction-mode connection
	// pooler (PgBouncer), where LISTEN does not work. Defaults to false:
	// Store.Append notifies after its commit and Store.AppendTx at once,
	// before its caller's commit (coalesced: at most one NOTIFY in flight
	// per store, one per meowmx.Config.NotifyInterval), and each store
	// keeps one listening connection while subscriptions run.
	DisableNotify bool
	// ProbeInterval is how often a store's listening connection, while
	// subscriptions run, checks for events that no NOTIFY announced
	// (writers that are not meowmx, or whose process ended before its
	// NOTIFY went out), reading the last value of es_events' id sequence.
	// Defaults to ProbeIntervalDefault; -1 turns the probe off. Ignored
	// with DisableNotify.
	ProbeInterval time.Duration
	// NoSubscriptionRowLock turns off the row lock that a worker's driver
	// holds on a subscription's row while the worker holds its lease (a
	// FOR KEY SHARE, on a connection of its own, in transactions that
	// write nothing and are replaced every 100 ms; see rowlock.go). The
	// lock is what keeps the Python meowmx client's batches (SELECT … FOR
	// UPDATE SKIP LOCKED on the row) from running beside a Go owner, and a
	// Go worker from taking a subscription while Python runs a batch of it.
	// Its cost: two connections per driver while it owns subscriptions,
	// and Python's readers (not Go's: their horizon leaves these
	// transactions out) see events up to about 100 ms later.
	// Set it when no Python client shares the database. Defaults to false.
	NoSubscriptionRowLock bool
}

// ProbeIntervalDefault is the default for Config.ProbeInterval.
const ProbeIntervalDefault = 25 * time.Millisecond

// Driver is the PostgreSQL driver. It is safe for concurrent use.
type Driver struct {
	pool   *pgxpool.Pool
	schema string // as given
	quoted string // quoted identifier, ready for SQL

	perAppend bool // EventAppendBatch sends one statement per append (tests)

	channel       string // LISTEN/NOTIFY channel
	disableNotify bool
	probeInterval time.Duration // 0: no probe

	q atomic.Pointer[queries] // nil until the tables' id type is known

	rowLocks *rowLocker // nil with Config.NoSubscriptionRowLock
}

// New returns a driver on pool. It does no I/O; the tables are looked up on
// first use, and created by Driver.Migrate (or meowmx.Store.Migrate).
func New(pool *pgxpool.Pool, config *Config) (*Driver, error) {
	if pool == nil {
		return nil, errors.New("meowmxpgx: pool is nil")
	}
	var cfg Config
	if config != nil {
		cfg = *config
	}
	if cfg.Schema == "" {
		cfg.Schema = SchemaDefault
	}
	if len(cfg.Schema) > 63 || strings.ContainsRune(cfg.Schema, 0) {
		return nil, fmt.Errorf("meowmxpgx: Config.Schema %q must be 1 to 63 bytes without NUL", cfg.Schema)
	}
	switch {
	case cfg.ProbeInterval == 0:
		cfg.ProbeInterval = ProbeIntervalDefault
	case cfg.ProbeInterval == -1:
		cfg.ProbeInterval = 0
	case cfg.ProbeInterval < 0:
		return nil, fmt.Errorf("meowmxpgx: Config.ProbeInterval %s is negative (use -1 to turn the probe off)", cfg.ProbeInterval)
	}
	d := &Driver{
		pool:   pool,
		schema: cfg.Schema,
		quoted: pgx.Identifier{cfg.Schema}.Sanitize(),

		channel:       channelName(cfg.Schema),
		disableNotify: cfg.DisableNotify,
		probeInterval: cfg.ProbeInterval,
	}
	if !cfg.NoSubscriptionRowLock {
		d.rowLocks = newRowLocker(d)
	}
	return d, nil
}

// Pool returns the pool the driver runs on.
func (d *Driver) Pool() *pgxpool.Pool { return d.pool }

// Schema returns the schema holding the tables.
func (d *Driver) Schema() string { return d.schema }

// Name implements meowmxdriver.Driver.
func (d *Driver) Name() string { return "postgres" }

// Capabilities implements meowmxdriver.Driver: batches of appends, a
// commit horizon, partition indexes and, unless Config.DisableNotify,
// LISTEN/NOTIFY.
func (d *Driver) Capabilities() meowmxdriver.Capabilities {
	c := meowmxdriver.Capabilities{BatchAppender: d, Horizon: true, Browser: browser{d}, PartitionIndexer: d}
	if !d.disableNotify {
		c.Listener = listener{d}
	}
	return c
}

// Executor implements meowmxdriver.Driver.
func (d *Driver) Executor() meowmxdriver.Executor {
	return &executor{d: d, db: d.pool, pool: true}
}

// UnwrapExecutor implements meowmxdriver.Driver.
func (d *Driver) UnwrapExecutor(tx pgx.Tx) meowmxdriver.Executor {
	return &executor{d: d, db: tx}
}

// Begin implements meowmxdriver.Driver. The transaction begins with its
// first statement (see lazyTx).
func (d *Driver) Begin(ctx context.Context) (meowmxdriver.ExecutorTx, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("meowmxpgx: begin: %w", err)
	}
	tx := &lazyTx{pool: d.pool, pc: conn, conn: conn.Conn()}
	return &executorTx{executor: executor{d: d, db: tx}, tx: tx}, nil
}

// UnwrapTx implements meowmxdriver.Driver.
func (d *Driver) UnwrapTx(tx meowmxdriver.ExecutorTx) pgx.Tx {
	return tx.(*executorTx).tx
}

// dbtx is what a pool and a transaction have in common.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type executor struct {
	d    *Driver
	db   dbtx
	pool bool // db is the pool: each statement is its own transaction
}

// executorTx is a transaction on a connection of its own (the one tx
// holds, which it may have replaced), which goes back to the pool when
// the transaction ends.
type executorTx struct {
	executor
	tx *lazyTx
}

func (e *executorTx) Commit(ctx context.Context) error {
	if e.tx.released {
		return interpretError(pgx.ErrTxClosed, onRead)
	}
	defer e.tx.release()
	return interpretError(e.tx.Commit(ctx), onCommit)
}

func (e *executorTx) Rollback(ctx context.Context) error {
	if e.tx.released {
		return interpretError(pgx.ErrTxClosed, onRead)
	}
	defer e.tx.release()
	return interpretError(e.tx.Rollback(ctx), onRead)
}

// Broken implements meowmxdriver.ExecutorTx: the connection died, or
// BEGIN found no live connection in the pool (see lazyTx).
func (e *executorTx) Broken() bool { return e.tx.Broken() }

// queries returns the SQL for the tables' aggregate id type, reading that
// type from the catalog once.
func (e *executor) queries(ctx context.Context) (*queries, error) {
	d := e.d
	if q := d.q.Load(); q != nil {
		return q, nil
	}
	var idType *string
	err := e.db.QueryRow(ctx, `SELECT format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a
		WHERE a.attrelid = to_regclass($1) AND a.attname = 'id' AND NOT a.attisdropped`,
		d.quoted+".es_aggregates").Scan(&idType)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("meowmxpgx: schema %q: %w", d.schema, meowmxdriver.ErrNotMigrated)
	}
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	q, err := buildQueries(d.quoted, *idType)
	if err != nil {
		return nil, err
	}
	d.q.Store(q)
	return q, nil
}

// forget drops the cached queries, after the tables changed.
func (d *Driver) forget() {
	d.q.Store(nil)
}
