package meowmxpgx

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Subscription row locks: sharing subscriptions with the Python client.
//
// The Python meowmx client runs a batch of a subscription in a
// transaction that takes the subscription's row with SELECT … FOR UPDATE
// SKIP LOCKED: when another session holds any lock on the row, it skips
// the batch. A Go owner's lease lives in the row's columns, which Python
// does not read. So, while a worker of this driver holds a subscription's
// lease, the driver also holds a FOR KEY SHARE lock on its row:
//
//   - Python's FOR UPDATE conflicts with it, so Python's batches skip
//     while a Go worker owns the subscription;
//   - a Go worker takes the lock with SKIP LOCKED before its lease, so it
//     does not take a subscription whose row Python holds for a batch (it
//     stands by, as behind another Go owner);
//   - FOR KEY SHARE does not conflict with the non-key UPDATEs of Go's
//     lease and checkpoint, in any session, nor with another FOR KEY SHARE.
//
// A row lock gives its transaction a transaction id, and an open
// transaction id holds the commit horizon (pg_snapshot_xmin) back for
// every reader. Two things keep it from holding Go's readers back:
//
//   - the locks are held by transactions that never write anything, on
//     connections of their own (application_name rowLockApplication), and
//     Go's horizon (horizonSQL) leaves the transaction ids of those
//     sessions out: an id that never writes an event cannot hide one;
//     and they end by rolling back, never by committing, so that one
//     that ends while a reader's statement runs (in its snapshot, but no
//     longer in pg_stat_activity when the statement reads it) is left
//     out as aborted (see horizonSQL);
//   - the locking transaction is replaced every rowLockRoll (by a
//     goroutine of the driver while it holds locks): a new one on a second
//     connection takes the locks (a second KEY SHARE, no gap in which
//     Python could take the row), then the old one rolls back. No transaction
//     id of theirs lives much longer than rowLockRoll, which bounds what
//     they cost the server's VACUUM horizon and Python's own readers (which
//     use pg_snapshot_xmin as it is: they see events up to about
//     rowLockRoll later while a Go worker owns a subscription). The locking sessions also end
//     themselves when idle in their transaction for a lease's TTL
//     (idle_in_transaction_session_timeout): a hung process does not keep
//     Python out for longer than its lease. A roll that finds a session
//     waiting for the locking transaction (a DELETE of the row: a new KEY
//     SHARE would not queue behind it, and it would wait for ever) locks
//     nothing for that roll; the next lease call locks the rows again.
//
// Config.NoSubscriptionRowLock turns this off.

// rowLockApplication is the application_name of the sessions that hold
// subscription row locks and never write. Never give it to a session that
// writes events: readers would not wait for its transactions. Its
// transactions end with ROLLBACK, never COMMIT: horizonSQL counts on it
// to never go back (TestHorizonRowLockEnds).
const rowLockApplication = "meowmx row lock"

// rowLockRoll is how long one locking transaction lives: a goroutine of
// the driver replaces it that often while it holds locks (and a lease
// call does, when it comes later).
const rowLockRoll = 100 * time.Millisecond

// horizonSQL is the commit horizon that Go's readers read below: the
// oldest transaction id still running, among those of the snapshot,
// leaving out those of sessions named rowLockApplication, or the next
// transaction id when none runs. Every event with a smaller transaction id
// has committed (or never will) and is visible in the statement's
// snapshot: transactions of ids below it have ended, but those of the
// lock-only sessions, which write none. backend_xid is a 32-bit xid; the
// running ids of a snapshot differ by less than 2^31, so their low 32 bits
// identify them. A session whose backend_xid this role cannot see is not
// left out (the horizon is then the plain pg_snapshot_xmin).
//
// The snapshot is the statement's, taken when it starts; pg_stat_activity
// is read later, as it runs. A lock-only transaction that ends in between
// is in the snapshot, and no longer in pg_stat_activity: it would hold
// this horizon back below one that an earlier statement read (by up to
// rowLockRoll, and a read that stops at the horizon, such as IterAll,
// would stop short of events that an earlier read returned). So an id of
// the snapshot that has aborted by then is left out too, whoever it was:
// an aborted transaction's events are never visible. Lock-only
// transactions end by rolling back (rowLocker.roll), or with their
// session. The status is asked after pg_stat_activity is read (OFFSET 0
// keeps the filters apart, in that order: the subquery's first row reads
// pg_stat_activity before any status is asked), so that a lock-only
// transaction is in the one or aborted by the other. (No ORDER BY …
// LIMIT 1, to ask fewer ids their status: a partition's read disables
// sorts, indexOrderSQL, and the sort's disable_cost would have the
// statement JIT-compiled, for seconds.)
const horizonSQL = `(SELECT COALESCE(min(c.x), pg_snapshot_xmax(pg_current_snapshot())) FROM (
		SELECT x FROM pg_snapshot_xip(pg_current_snapshot()) x
		WHERE (x::text::bigint % 4294967296) NOT IN (
			SELECT backend_xid::text::bigint FROM pg_stat_activity
			WHERE application_name = '` + rowLockApplication + `' AND backend_xid IS NOT NULL)
		OFFSET 0) c
	WHERE pg_xact_status(c.x) IS DISTINCT FROM 'aborted')`

// errRowLocked: another client's session holds the subscription's row.
var errRowLocked = errors.New("meowmxpgx: the subscription's row is locked by another client (the Python meowmx client runs a batch)")

// rowLocker holds the row locks of the subscriptions whose leases this
// driver's workers hold. It is safe for concurrent use; its statements run
// one at a time.
type rowLocker struct {
	d  *Driver
	mu sync.Mutex
	// conns[cur] runs the locking transaction (began at began), conns[1-cur]
	// the next one; nil until needed.
	conns  [2]*pgx.Conn
	cur    int
	open   bool
	began  time.Time
	locked map[string]bool            // rows locked by the open transaction
	owners map[string]map[string]bool // lease holders by subscription
	ttl    time.Duration              // the last lease TTL asked for
	quit   chan struct{}              // stops the rolling goroutine; nil when none runs
}

func newRowLocker(d *Driver) *rowLocker {
	return &rowLocker{d: d, locked: map[string]bool{}, owners: map[string]map[string]bool{}}
}

// lock makes sure that the row of subscription name is locked, before a
// lease call for it; errRowLocked when another session holds it.
func (l *rowLocker) lock(ctx context.Context, name string, ttl time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ttl = ttl
	if l.open && time.Since(l.began) < rowLockRoll {
		if l.locked[name] {
			return nil
		}
		got, err := l.lockRows(ctx, l.conns[l.cur], []string{name})
		if err != nil {
			l.reset(ctx)
			return err
		}
		if !got[name] {
			return errRowLocked
		}
		l.locked[name] = true
		return nil
	}
	if err := l.roll(ctx, name, ttl); err != nil {
		return err
	}
	if !l.locked[name] {
		return errRowLocked
	}
	return nil
}

// held records the outcome of a lease call: whether owner holds the lease
// of subscription name. A name that no owner holds is unlocked at the next
// roll, at once when an owner gave it up.
func (l *rowLocker) held(ctx context.Context, name, owner string, held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if held {
		if l.owners[name] == nil {
			l.owners[name] = map[string]bool{}
		}
		l.owners[name][owner] = true
		return
	}
	had := l.owners[name][owner]
	delete(l.owners[name], owner)
	if len(l.owners[name]) == 0 {
		delete(l.owners, name)
		if had && l.locked[name] {
			_ = l.roll(ctx, "", l.ttl) // let another client have it now
		}
	}
}

// roll replaces the locking transaction: one on the other connection
// locks the rows of the held subscriptions (and extra, unless ""), then
// the old one rolls back. With nothing to lock, the connections close.
func (l *rowLocker) roll(ctx context.Context, extra string, ttl time.Duration) error {
	names := slices.Collect(maps.Keys(l.owners))
	if extra != "" && l.owners[extra] == nil {
		names = append(names, extra)
	}
	if l.open && len(names) > 0 {
		// A new KEY SHARE joins the old one without queueing behind a
		// session that waits for the row (a DELETE of the subscription),
		// which would then wait for ever: while one waits, the rows are
		// let go for one roll, and locked again at the next.
		var waited bool
		if err := l.conns[l.cur].QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_locks
				WHERE locktype = 'transactionid' AND NOT granted
				  AND transactionid::text::bigint = pg_current_xact_id()::text::bigint % 4294967296)`).Scan(&waited); err != nil {
			l.reset(ctx)
			return interpretError(err, onRead)
		}
		if waited {
			names = nil
		}
	}
	if len(names) == 0 {
		l.reset(ctx)
		return nil
	}
	next := 1 - l.cur
	if !l.open {
		next = l.cur
	}
	conn := l.conns[next]
	if conn == nil || conn.IsClosed() {
		cfg := l.d.pool.Config().ConnConfig.Copy()
		cfg.RuntimeParams["application_name"] = rowLockApplication
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return fmt.Errorf("meowmxpgx: subscription row lock: connect: %w", err)
		}
		l.conns[next], conn = c, c
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SELECT set_config('idle_in_transaction_session_timeout', $1, true)`, strconv.FormatInt(max(ttl.Milliseconds(), 1000), 10))
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		l.reset(ctx)
		return interpretError(err, onRead)
	}
	got, err := l.lockRows(ctx, conn, names)
	if err != nil {
		l.reset(ctx)
		return err
	}
	if l.open {
		// ROLLBACK, not COMMIT: an aborted id is one that horizonSQL
		// leaves out even once its session no longer shows it.
		if _, err := l.conns[l.cur].Exec(ctx, `ROLLBACK`); err != nil {
			_ = l.conns[l.cur].Close(context.WithoutCancel(ctx))
		}
	}
	l.cur, l.open, l.began, l.locked = next, true, time.Now(), got
	if l.quit == nil {
		l.quit = make(chan struct{})
		go l.rolling(l.quit)
	}
	return nil
}

// rolling replaces the locking transaction every rowLockRoll, until quit
// is closed, so that no transaction id of it lives longer, however seldom
// the owners renew their leases (an idle owner renews every LeaseTimeout/3).
func (l *rowLocker) rolling(quit chan struct{}) {
	t := time.NewTicker(rowLockRoll)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if l.open && time.Since(l.began) >= rowLockRoll*3/4 { // the ticks come a little after began
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = l.roll(ctx, "", l.ttl) // on failure it resets: the next lease call locks again
			cancel()
		}
		l.mu.Unlock()
	}
}

// lockRows locks the rows of names that no other session holds, in conn's
// transaction, and returns those it locked.
func (l *rowLocker) lockRows(ctx context.Context, conn *pgx.Conn, names []string) (map[string]bool, error) {
	rows, _ := conn.Query(ctx, `SELECT subscription_name FROM `+l.d.quoted+`.es_event_subscriptions
		WHERE subscription_name = ANY($1::text[]) FOR KEY SHARE SKIP LOCKED`, names)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	out := make(map[string]bool, len(got))
	for _, n := range got {
		out[n] = true
	}
	return out, nil
}

// reset closes the connections: their transactions, and locks, end.
func (l *rowLocker) reset(ctx context.Context) {
	for i, c := range l.conns {
		if c != nil {
			_ = c.Close(context.WithoutCancel(ctx))
			l.conns[i] = nil
		}
	}
	l.open, l.locked = false, map[string]bool{}
	if l.quit != nil {
		close(l.quit)
		l.quit = nil
	}
}
