package meowmxpgx

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// EventAppendBatch implements meowmxdriver.BatchAppender. It sends BEGIN,
// the statement of EventAppend for each append, and COMMIT in one round
// trip, as a pgx.Batch on one connection: one transaction, one commit. A
// refused append returns no rows and leaves the transaction alone; an
// append that raises an error (a unique violation from a concurrent
// writer, a deadlock, a value the column refuses) aborts it, and
// EventAppendBatch returns a *meowmxdriver.BatchItemError naming it.
// Refused appends' Stream is left nil. A batch of one append is sent as
// EventAppend sends it, alone.
//
// One statement per append measured the same as one statement over arrays
// for all the appends (docs/BENCHMARKS.md, "Group commit: details"): the rows, not the
// statements, cost the server its time.
func (d *Driver) EventAppendBatch(ctx context.Context, ps []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
	q, err := (&executor{d: d, db: d.pool, pool: true}).queries(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, interpretError(&acquireError{err}) // nothing was sent
	}
	defer conn.Release()
	for i, p := range ps {
		if err := q.checkID(p.AggregateID); err != nil {
			return nil, &meowmxdriver.BatchItemError{Index: i, Err: err}
		}
	}
	if len(ps) == 1 {
		return appendOne(ctx, conn, q, ps[0])
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for _, p := range ps {
		sql, args := q.appendStatement(p)
		b.Queue(sql, args...)
	}
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	results, err := readBatch(br, ps)
	closeErr := br.Close()
	if err == nil && closeErr != nil {
		err = writeError(closeErr, true)
	}
	if err != nil && conn.Conn().PgConn().TxStatus() != 'I' && !conn.Conn().IsClosed() {
		// A statement failed inside the explicit transaction: the server
		// skipped the rest up to the batch's end and waits for a ROLLBACK.
		// Without one the pool would close the connection.
		if _, rbErr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}
	return results, err
}

// appendOne runs a batch of one append as EventAppend does: one
// statement, in a transaction of its own.
func appendOne(ctx context.Context, conn *pgxpool.Conn, q *queries, p *meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
	sql, args := q.appendStatement(p)
	rows, _ := conn.Query(ctx, sql, args...)
	events, err := collectAppended(rows)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && !fatal(pgErr) {
			return nil, &meowmxdriver.BatchItemError{Index: 0, Err: itemError(err)}
		}
		return nil, writeError(err, true)
	}
	return []*meowmxdriver.EventAppendResult{appendOutcome(p, events)}, nil
}

// readBatch reads the results of BEGIN, the appends and COMMIT.
func readBatch(br pgx.BatchResults, ps []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
	if _, err := br.Exec(); err != nil {
		return nil, writeError(err, false)
	}
	results := make([]*meowmxdriver.EventAppendResult, len(ps))
	for i, p := range ps {
		rows, _ := br.Query()
		events, err := collectAppended(rows)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && !fatal(pgErr) {
				return nil, &meowmxdriver.BatchItemError{Index: i, Err: itemError(err)}
			}
			return nil, writeError(err, false)
		}
		results[i] = appendOutcome(p, events)
	}
	if _, err := br.Exec(); err != nil {
		return nil, writeError(err, true)
	}
	return results, nil
}

// appendOutcome is the result of an append statement that returned
// events: all of the append's, or none when it was refused.
func appendOutcome(p *meowmxdriver.EventAppendParams, events []meowmxdriver.AppendedEvent) *meowmxdriver.EventAppendResult {
	res := &meowmxdriver.EventAppendResult{}
	if len(events) == len(p.EventTypes) {
		res.Appended, res.Events = true, events
	}
	return res
}

// itemError interprets the error of one append statement of a batch, like
// EventAppend in a caller's transaction.
func itemError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return errors.Join(meowmxdriver.ErrDuplicate, interpretError(err))
	}
	return interpretError(err)
}

// fatal tells whether the server ended the session with the error.
func fatal(pgErr *pgconn.PgError) bool {
	switch pgErr.SeverityUnlocalized {
	case "FATAL", "PANIC":
		return true
	case "":
		return pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC"
	}
	return false
}

// writeError interprets the error of a write that runs its own
// transaction. committing tells whether the failing step was the commit
// (or an autocommit statement): when the connection failed there, or
// after the statements were sent without an answer, the transaction may
// have committed, and the error wraps meowmxdriver.ErrCommitUnknown.
func writeError(err error, committing bool) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr) && (!fatal(pgErr) || !committing):
		// The server answered with an error: the transaction rolled back.
		return interpretError(err)
	case pgconn.SafeToRetry(err):
		// Nothing was sent.
		return interpretError(err)
	}
	return fmt.Errorf("%w: %w", meowmxdriver.ErrCommitUnknown, interpretError(err))
}
