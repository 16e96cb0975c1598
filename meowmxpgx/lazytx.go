package meowmxpgx

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// lazyTx is the pgx.Tx of Driver.Begin, handed to subscription handlers.
// It sends BEGIN when it is first used, not before: a handler that never
// touches its transaction (one that publishes elsewhere, or does nothing)
// costs no round trip for it, and the checkpoint then advances in a
// statement of its own (executorTx.CommitAdvance).
//
// When BEGIN fails, the connection is closed, so that whatever is sent on
// it afterwards fails rather than running outside a transaction.
type lazyTx struct {
	conn *pgx.Conn
	tx   pgx.Tx // nil until begun
}

var _ pgx.Tx = (*lazyTx)(nil)

// begin sends BEGIN unless it was sent.
func (t *lazyTx) begin(ctx context.Context) error {
	if t.tx != nil {
		return nil
	}
	tx, err := t.conn.Begin(ctx)
	if err != nil {
		_ = t.conn.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("meowmxpgx: begin: %w", err)
	}
	t.tx = tx
	return nil
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
