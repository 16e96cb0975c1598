package meowmxpgx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Retries of a lazy BEGIN whose connection is broken.
const (
	beginRetries = 3
	beginBackoff = 10 * time.Millisecond // doubles with each retry
)

// lazyTx is the pgx.Tx of Driver.Begin, handed to subscription handlers.
// It sends BEGIN when it is first used, not before: a handler that never
// touches its transaction (one that publishes elsewhere, or does nothing)
// costs no round trip for it, and the checkpoint then advances in a
// statement of its own (executorTx.SubscriptionCommit).
//
// The connection it holds may have died since it went back to the pool
// (pgxpool does not ping a connection idle for less than a second): after
// a server restart, or pg_terminate_backend. When BEGIN fails because the
// connection is broken, nothing was done on it, so lazyTx drops it from
// the pool and sends BEGIN on another, up to beginRetries times. When
// BEGIN fails otherwise, or on every connection, the connection is closed,
// so that whatever is sent on it afterwards fails rather than running
// outside a transaction.
type lazyTx struct {
	pool *pgxpool.Pool
	// pc is the pool's handle on conn; nil once released, or once conn was
	// dropped from the pool because it broke.
	pc       *pgxpool.Conn
	conn     *pgx.Conn
	tx       pgx.Tx // nil until begun
	broken   bool   // BEGIN found no live connection; after release, Broken's answer
	failed   bool   // BEGIN failed otherwise (refused, or ctx ended), and conn is closed
	released bool
}

var _ pgx.Tx = (*lazyTx)(nil)

// connBroken tells whether BEGIN failed on conn because the connection is
// broken, rather than because the server refused it or ctx ended.
func connBroken(ctx context.Context, conn *pgx.Conn, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !fatal(pgErr) {
		return false
	}
	return conn.IsClosed()
}

// begin sends BEGIN unless it was sent.
func (t *lazyTx) begin(ctx context.Context) error {
	if t.tx != nil {
		return nil
	}
	if t.released {
		return pgx.ErrTxClosed
	}
	if t.failed || t.broken {
		// Not on another connection either: the statements that came
		// first, with the failed BEGIN, did not run.
		return errors.New("meowmxpgx: begin: the transaction failed to begin")
	}
	backoff := beginBackoff
	for retry := 0; ; retry++ {
		tx, err := t.conn.Begin(ctx)
		if err == nil {
			t.tx = tx
			return nil
		}
		if !connBroken(ctx, t.conn, err) {
			t.failed = true
			_ = t.conn.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("meowmxpgx: begin: %w", err)
		}
		if retry == beginRetries {
			t.broken = true
			return fmt.Errorf("meowmxpgx: begin: connection broken (%d connections tried): %w", retry+1, err)
		}
		// Out of the pool (it is closed already), which frees its place.
		// conn stays, closed, for whatever is sent until another comes.
		if t.pc != nil {
			_ = t.pc.Hijack().Close(context.WithoutCancel(ctx))
			t.pc = nil
		}
		if !sleepCtx(ctx, backoff) {
			t.failed = true // ctx ended: no broken connection to report
			return fmt.Errorf("meowmxpgx: begin: %w (then %w)", err, ctx.Err())
		}
		backoff *= 2
		pc, aerr := t.pool.Acquire(ctx)
		if aerr != nil {
			t.broken, t.failed = ctx.Err() == nil, ctx.Err() != nil
			return fmt.Errorf("meowmxpgx: begin: %w (then %w)", err, aerr)
		}
		t.pc, t.conn = pc, pc.Conn()
	}
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// Broken tells whether the transaction's connection broke: it died, or
// BEGIN found no live connection. Not when the server refused BEGIN, or
// ctx ended during it.
func (t *lazyTx) Broken() bool {
	return t.broken || !t.released && !t.failed && t.conn.IsClosed()
}

// release returns the connection to the pool, which destroys it unless it
// is idle, outside a transaction. The connection is no longer the
// transaction's: Broken keeps the answer it had.
func (t *lazyTx) release() {
	if t.released {
		return
	}
	t.broken = t.Broken()
	t.released = true
	if t.pc != nil {
		t.pc.Release()
		t.pc = nil
	}
}

// Begin starts a pseudo nested transaction (a savepoint), as pgx.Tx does.
func (t *lazyTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.tx.Begin(ctx)
}

// Commit commits the transaction; nothing when it never began.
func (t *lazyTx) Commit(ctx context.Context) error {
	if t.tx == nil {
		return nil
	}
	return t.tx.Commit(ctx)
}

// Rollback rolls the transaction back; nothing when it never began.
func (t *lazyTx) Rollback(ctx context.Context) error {
	if t.tx == nil {
		return nil
	}
	return t.tx.Rollback(ctx)
}

// CopyFrom runs COPY FROM in the transaction.
func (t *lazyTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.begin(ctx); err != nil {
		return 0, err
	}
	return t.tx.CopyFrom(ctx, table, columns, src)
}

// SendBatch sends a batch in the transaction.
func (t *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.begin(ctx); err != nil {
		return t.conn.SendBatch(ctx, b) // the connection is closed: it fails
	}
	return t.tx.SendBatch(ctx, b)
}

// LargeObjects returns the large objects of the transaction, which it
// begins without a context. It panics when BEGIN fails, having no other
// way to say so (a subscription reports a handler's panic as its error).
func (t *lazyTx) LargeObjects() pgx.LargeObjects {
	if err := t.begin(context.Background()); err != nil {
		panic(err)
	}
	return t.tx.LargeObjects()
}

// Prepare prepares a statement on the transaction's connection.
func (t *lazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.tx.Prepare(ctx, name, sql)
}

// Exec runs a statement in the transaction.
func (t *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.begin(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.tx.Exec(ctx, sql, args...)
}

// Query runs a query in the transaction.
func (t *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.begin(ctx); err != nil {
		return t.conn.Query(ctx, sql, args...) // the connection is closed: it fails
	}
	return t.tx.Query(ctx, sql, args...)
}

// QueryRow runs a query of one row in the transaction.
func (t *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.begin(ctx); err != nil {
		return t.conn.QueryRow(ctx, sql, args...) // the connection is closed: it fails
	}
	return t.tx.QueryRow(ctx, sql, args...)
}

// Conn returns the transaction's connection, after sending BEGIN (without
// a context) so that what runs on it runs in the transaction.
func (t *lazyTx) Conn() *pgx.Conn {
	_ = t.begin(context.Background())
	return t.conn
}
