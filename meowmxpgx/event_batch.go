package meowmxpgx

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// EventAppendBatch implements meowmxdriver.BatchAppender. It sends BEGIN, the
// appends and COMMIT in one round trip, as a pgx.Batch on one connection:
// one transaction, one commit. The appends go as one statement over arrays
// for each round of distinct streams (appendManySQL; the k-th append to a
// stream is in round k, so it sees the earlier ones). A refused append
// writes nothing and leaves the others alone.
//
// A batch of one append is sent as EventAppend sends it, alone.
//
// When a statement raises an error (a unique violation from a concurrent
// writer, a deadlock, a value the column refuses), the transaction is
// rolled back and the batch is sent again with one statement per append
// (the statement of EventAppend), which tells which append failed: its
// error is a *meowmxdriver.BatchItemError. Refused appends' Stream is left
// nil.
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
	if len(ps) == 1 {
		return appendOne(ctx, conn, q, ps[0])
	}
	if !d.perAppend {
		results, err := sendBatch(ctx, conn, ps, q.queueMany, readMany)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || fatal(pgErr) || errors.Is(err, meowmxdriver.ErrCommitUnknown) {
			return results, err
		}
	}
	return sendBatch(ctx, conn, ps, q.queueEach, readEach)
}

// appendOne runs a batch of one append as EventAppend does: one
// statement, in a transaction of its own.
func appendOne(ctx context.Context, conn *pgxpool.Conn, q *queries, p *meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
	sql, args := q.appendStatement(p)
	rows, _ := conn.Query(ctx, sql, args...)
	events, err := pgx.CollectRows(rows, scanAppended)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && !fatal(pgErr) {
			return nil, &meowmxdriver.BatchItemError{Index: 0, Err: itemError(err)}
		}
		return nil, writeError(err, true)
	}
	return []*meowmxdriver.EventAppendResult{appendOutcome(p, events)}, nil
}

// sendBatch sends BEGIN, the appends that queue adds, and COMMIT, and
// reads the appends' results with read.
func sendBatch(ctx context.Context, conn *pgxpool.Conn, ps []*meowmxdriver.EventAppendParams,
	queue func(*pgx.Batch, []*meowmxdriver.EventAppendParams) [][]int,
	read func(pgx.BatchResults, []*meowmxdriver.EventAppendParams, [][]int) ([]*meowmxdriver.EventAppendResult, error),
) ([]*meowmxdriver.EventAppendResult, error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// The append statements take arrays, whose length custom plans know:
	// PostgreSQL would plan them again on every run, which costs more than
	// running them. The generic plan suits every length.
	b.Queue("SET LOCAL plan_cache_mode = force_generic_plan")
	statements := queue(b, ps)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	results, err := func() ([]*meowmxdriver.EventAppendResult, error) {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return nil, writeError(err, false)
			}
		}
		results, err := read(br, ps, statements)
		if err != nil {
			return nil, err
		}
		if _, err := br.Exec(); err != nil {
			return nil, writeError(err, true)
		}
		return results, nil
	}()
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

// queueEach queues one statement per append.
func (q *queries) queueEach(b *pgx.Batch, ps []*meowmxdriver.EventAppendParams) [][]int {
	for _, p := range ps {
		sql, args := q.appendStatement(p)
		b.Queue(sql, args...)
	}
	return nil
}

func readEach(br pgx.BatchResults, ps []*meowmxdriver.EventAppendParams, _ [][]int) ([]*meowmxdriver.EventAppendResult, error) {
	results := make([]*meowmxdriver.EventAppendResult, len(ps))
	for i, p := range ps {
		rows, _ := br.Query()
		events, err := pgx.CollectRows(rows, scanAppended)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && !fatal(pgErr) {
				return nil, &meowmxdriver.BatchItemError{Index: i, Err: itemError(err)}
			}
			return nil, writeError(err, false)
		}
		results[i] = appendOutcome(p, events)
	}
	return results, nil
}

// queueMany queues one appendManySQL statement per round of appends to
// distinct streams, and returns the rounds' appends (indexes into ps).
func (q *queries) queueMany(b *pgx.Batch, ps []*meowmxdriver.EventAppendParams) [][]int {
	var rounds [][]int
	seen := make(map[string]int, len(ps))
	for i, p := range ps {
		k := seen[p.AggregateID]
		seen[p.AggregateID] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], i)
	}
	for _, round := range rounds {
		var ids, types, evTypes, data []string
		var expected []int64
		var counts, evAppend, evPos []int32
		var meta, uuids [][]byte
		for j, i := range round {
			p := ps[i]
			ids = append(ids, p.AggregateID)
			types = append(types, p.AggregateType)
			expected = append(expected, p.Expected)
			counts = append(counts, int32(len(p.EventTypes)))
			for k := range p.EventTypes {
				evAppend = append(evAppend, int32(j+1))
				evPos = append(evPos, int32(k+1))
				evTypes = append(evTypes, p.EventTypes[k])
				data = append(data, string(p.Data[k]))
				meta = append(meta, p.Metadata[k])
				var u []byte
				if p.EventUUIDs != nil {
					u = p.EventUUIDs[k]
				}
				uuids = append(uuids, u)
			}
		}
		b.Queue(q.appendMany, ids, types, expected, counts, evAppend, evPos, evTypes, data, nullableText(meta), nullableUUIDs(uuids))
	}
	return rounds
}

func readMany(br pgx.BatchResults, ps []*meowmxdriver.EventAppendParams, rounds [][]int) ([]*meowmxdriver.EventAppendResult, error) {
	events := make([][]meowmxdriver.AppendedEvent, len(ps))
	for _, round := range rounds {
		rows, _ := br.Query()
		var idx int
		var a meowmxdriver.AppendedEvent
		_, err := pgx.ForEachRow(rows, []any{&idx, &a.ID, &a.TransactionID, &a.Version, &a.RecordedAt}, func() error {
			if idx < 1 || idx > len(round) {
				return fmt.Errorf("meowmxpgx: batch statement returned append %d of %d", idx, len(round))
			}
			i := round[idx-1]
			events[i] = append(events[i], a)
			return nil
		})
		if err != nil {
			return nil, writeError(err, false)
		}
	}
	results := make([]*meowmxdriver.EventAppendResult, len(ps))
	for i, p := range ps {
		results[i] = appendOutcome(p, events[i])
	}
	return results, nil
}

// appendOutcome is the result of an append that returned events.
func appendOutcome(p *meowmxdriver.EventAppendParams, events []meowmxdriver.AppendedEvent) *meowmxdriver.EventAppendResult {
	res := &meowmxdriver.EventAppendResult{}
	if len(events) == len(p.EventTypes) {
		slices.SortFunc(events, func(a, b meowmxdriver.AppendedEvent) int { return int(a.Version - b.Version) })
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
