package meowmxpgx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// EventAppendBatch implements meowmxdriver.BatchAppender: one
// transaction, one commit, one round trip. The appends go in rounds of
// distinct streams (the k-th append to a stream is in round k, so it sees
// the earlier ones), each round as one statement over arrays
// (appendRoundSQL), or as the statement of EventAppend when it holds one
// append. A batch that is one round is that statement alone, in a
// transaction of its own; a batch of several rounds is BEGIN, their
// statements and COMMIT, sent as one pgx.Batch.
//
// After the commit, the streams of refused appends are read in one
// statement; an append refused only by the order guard (see
// meowmxdriver.ErrReordered) is then run alone, in a transaction that
// locks its stream first.
//
// An append that raises an error (a unique violation from a concurrent
// writer, a deadlock, a value the column refuses) aborts the transaction.
// When its statement held other appends too, the batch is sent again with
// one statement per append, which names it.
//
// A batch of one append is EventAppend on the pool.
func (d *Driver) EventAppendBatch(ctx context.Context, ps []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
	pool := &executor{d: d, db: d.pool, pool: true}
	q, err := pool.queries(ctx)
	if err != nil {
		return nil, err
	}
	if len(ps) == 1 {
		res, err := pool.EventAppend(ctx, ps[0])
		if err != nil {
			return nil, err
		}
		return []*meowmxdriver.EventAppendResult{res}, nil
	}
	for i, p := range ps {
		if err := q.checkID(p.Stream.ID); err != nil {
			return nil, &meowmxdriver.BatchItemError{Index: i, Err: err}
		}
	}
	results, err := d.sendAppends(ctx, q, ps)
	if err != nil {
		return nil, err
	}
	d.explainRefused(ctx, q, ps, results)
	return results, nil
}

// sendAppends runs a batch of appends in one transaction.
func (d *Driver) sendAppends(ctx context.Context, q *queries, ps []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, interpretError(&acquireError{err}, onCommit) // nothing was sent
	}
	defer conn.Release()
	rounds := appendRounds(ps, d.perAppend)
	if len(rounds) == 1 {
		return appendRound(ctx, conn, q, ps)
	}
	results, err := sendBatch(ctx, conn, q, ps, rounds)
	var ie *meowmxdriver.BatchItemError
	if errors.As(err, &ie) && ie.Index < 0 {
		// A statement of several appends failed: find the one.
		results, err = sendBatch(ctx, conn, q, ps, appendRounds(ps, true))
	}
	return results, err
}

// explainRefused fills in the streams of the refused appends of a
// committed batch, reading them in one statement, and runs again, alone,
// those that only the order guard refused. The batch has committed: what
// fails now is the refused appends' own error (EventAppendResult.Err).
func (d *Driver) explainRefused(ctx context.Context, q *queries, ps []*meowmxdriver.EventAppendParams, results []*meowmxdriver.EventAppendResult) {
	var ids []string
	for i, r := range results {
		if !r.Appended {
			ids = append(ids, ps[i].Stream.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	rows, _ := d.pool.Query(ctx, q.streamGets, ids)
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*meowmxtype.StreamInfo, error) {
		var s meowmxtype.StreamInfo
		return &s, row.Scan(&s.StreamID.ID, &s.StreamID.Type, &s.Version)
	})
	if err != nil {
		for _, r := range results {
			if !r.Appended {
				r.Err = interpretError(err, onRead)
			}
		}
		return
	}
	byID := make(map[string]*meowmxtype.StreamInfo, len(found))
	for _, s := range found {
		byID[s.StreamID.ID] = s
	}
	// The stream as the refused append found it: as it is now, less the
	// events of the later appends to it in the batch.
	later := make(map[string]int64, len(ids))
	for i := len(results) - 1; i >= 0; i-- {
		r, p := results[i], ps[i]
		if r.Appended {
			later[p.Stream.ID] += int64(len(p.EventTypes))
			continue
		}
		s := byID[p.Stream.ID]
		if s != nil && later[p.Stream.ID] > 0 {
			s = &meowmxtype.StreamInfo{StreamID: s.StreamID, Version: s.Version - later[p.Stream.ID]}
		}
		if s == nil || s.StreamID.Type != p.Stream.Type || !p.Expected.Matches(s.Version) {
			r.Stream = s
			continue
		}
		// At the expected version: refused by the order guard, or for a
		// UUID already stored. Alone, it finds out which.
		res, err := d.appendAlone(ctx, q, p, true)
		if err != nil {
			// The batch has committed: this append's error is its own.
			res = &meowmxdriver.EventAppendResult{Err: err}
		}
		results[i] = res
	}
}

// appendRound runs appends to distinct streams as one statement in a
// transaction of its own. When it fails, the appends are sent again one
// statement per append, which names the failing one.
func appendRound(ctx context.Context, conn *pgxpool.Conn, q *queries, ps []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error) {
	round := make([]int, len(ps))
	for i := range round {
		round[i] = i
	}
	sql, args := q.roundStatement(ps, round)
	rows, _ := conn.Query(ctx, sql, args...)
	results := make([]*meowmxdriver.EventAppendResult, len(ps))
	err := collectRound(rows, ps, round, results)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !fatal(pgErr) {
		return sendBatch(ctx, conn, q, ps, appendRounds(ps, true))
	}
	if err != nil {
		return nil, interpretError(err, onCommit)
	}
	return results, nil
}

// appendRounds splits ps into statements: their indexes into ps, in the
// order to run them. Appends to distinct streams share a statement,
// unless perAppend.
func appendRounds(ps []*meowmxdriver.EventAppendParams, perAppend bool) [][]int {
	rounds := make([][]int, 0, 1)
	if perAppend {
		for i := range ps {
			rounds = append(rounds, []int{i})
		}
		return rounds
	}
	seen := make(map[string]int, len(ps))
	for i, p := range ps {
		k := seen[p.Stream.ID]
		seen[p.Stream.ID] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, make([]int, 0, len(ps)-i))
		}
		rounds[k] = append(rounds[k], i)
	}
	return rounds
}

// sendBatch sends BEGIN, a statement per round, and COMMIT, and reads the
// appends' results. The error of a statement that held one append is a
// *meowmxdriver.BatchItemError naming it; that of a statement of several
// has Index -1.
func sendBatch(ctx context.Context, conn *pgxpool.Conn, q *queries, ps []*meowmxdriver.EventAppendParams, rounds [][]int) ([]*meowmxdriver.EventAppendResult, error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for _, round := range rounds {
		sql, args := q.roundStatement(ps, round)
		b.Queue(sql, args...)
	}
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	results, err := readBatch(br, ps, rounds)
	closeErr := br.Close()
	if err == nil && closeErr != nil {
		err = interpretError(closeErr, onCommit)
	}
	if err != nil {
		rollbackOpen(ctx, conn.Conn())
	}
	return results, err
}

// roundStatement returns the statement of appends to distinct streams
// (indexes into ps) and its arguments: that of EventAppend for one append.
func (q *queries) roundStatement(ps []*meowmxdriver.EventAppendParams, round []int) (string, []any) {
	if len(round) == 1 {
		return q.appendStatement(ps[round[0]])
	}
	n, guards, withUUIDs := 0, 0, 0
	ids, types, expected := make([]string, len(round)), make([]string, len(round)), make([]int64, len(round))
	for j, i := range round {
		p := ps[i]
		ids[j], types[j], expected[j] = p.Stream.ID, p.Stream.Type, int64(p.Expected)
		n += len(p.EventTypes)
		switch p.Expected {
		case meowmxtype.AnyVersion:
			guards |= guardAny
		case meowmxtype.NoStream:
			guards |= guardNoStream
		default:
			guards |= guardVersion
		}
		if p.EventUUIDs != nil {
			withUUIDs = 1
		}
	}
	evTypes, data, meta := make([]string, 0, n), make([][]byte, 0, n), make([][]byte, 0, n)
	var uuids [][]byte
	if withUUIDs == 1 {
		uuids = make([][]byte, 0, n)
	}
	for _, i := range round {
		p := ps[i]
		evTypes, data, meta = append(evTypes, p.EventTypes...), append(data, p.Data...), append(meta, p.Metadata...)
		if withUUIDs == 1 {
			if p.EventUUIDs != nil {
				uuids = append(uuids, p.EventUUIDs...)
			} else {
				uuids = append(uuids, make([][]byte, len(p.EventTypes))...)
			}
		}
	}
	args := []any{ids, types, expected}
	many := 0
	if n > len(round) {
		many = 1
		counts, idx, pos := make([]int32, len(round)), make([]int32, 0, n), make([]int32, 0, n)
		for j, i := range round {
			counts[j] = int32(len(ps[i].EventTypes))
			for k := range counts[j] {
				idx, pos = append(idx, int32(j+1)), append(pos, k+1)
			}
		}
		args = append(args, counts, idx, pos)
	}
	args = append(args, evTypes, data, nullableText(meta))
	if withUUIDs == 1 {
		args = append(args, nullableUUIDs(uuids))
	}
	return q.appendRound[guards][withUUIDs][many], args
}

// rollbackOpen rolls back the transaction that a batch which stopped
// inside it left open: the server skipped the rest of the batch and waits
// for a ROLLBACK. Without one the pool would close the connection; when the
// ROLLBACK fails, rollbackOpen closes it.
func rollbackOpen(ctx context.Context, conn *pgx.Conn) {
	if conn.PgConn().TxStatus() != 'I' && !conn.IsClosed() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
		}
	}
}

// readBatch reads the results of BEGIN, the rounds' statements and
// COMMIT.
func readBatch(br pgx.BatchResults, ps []*meowmxdriver.EventAppendParams, rounds [][]int) ([]*meowmxdriver.EventAppendResult, error) {
	if _, err := br.Exec(); err != nil {
		return nil, interpretError(err, onWrite)
	}
	results := make([]*meowmxdriver.EventAppendResult, len(ps))
	for _, round := range rounds {
		rows, _ := br.Query()
		var err error
		if len(round) == 1 {
			var events []meowmxtype.AppendedEvent
			events, err = collectAppended(rows)
			results[round[0]] = &meowmxdriver.EventAppendResult{Appended: len(events) > 0, Events: events}
		} else {
			err = collectRound(rows, ps, round, results)
		}
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && !fatal(pgErr) {
				index := -1
				if len(round) == 1 {
					index = round[0]
				}
				return nil, &meowmxdriver.BatchItemError{Index: index, Err: interpretError(err, onRead)}
			}
			return nil, interpretError(err, onWrite)
		}
	}
	if _, err := br.Exec(); err != nil {
		return nil, interpretError(err, onCommit)
	}
	return results, nil
}

// collectRound reads the events a round statement wrote into results.
func collectRound(rows pgx.Rows, ps []*meowmxdriver.EventAppendParams, round []int, results []*meowmxdriver.EventAppendResult) error {
	defer rows.Close()
	var (
		id pgtype.DriverBytes // valid until the next row
		ev meowmxtype.AppendedEvent
		j  int // the append of the previous row: rows come in append order
	)
	for rows.Next() {
		if err := rows.Scan(&id, &ev.Position.TransactionID, &ev.RecordedAt, &ev.Version, &ev.Position.EventID); err != nil {
			return err
		}
		if ps[round[j]].Stream.ID != string(id) {
			j = slices.IndexFunc(round, func(i int) bool { return ps[i].Stream.ID == string(id) })
			if j < 0 {
				return fmt.Errorf("meowmxpgx: round statement returned an event of stream %q, not in the round", id)
			}
		}
		i := round[j]
		if results[i] == nil {
			results[i] = &meowmxdriver.EventAppendResult{Events: make([]meowmxtype.AppendedEvent, 0, len(ps[i].EventTypes))}
		}
		results[i].Events = append(results[i].Events, ev)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, i := range round {
		if results[i] == nil {
			results[i] = &meowmxdriver.EventAppendResult{} // refused
			continue
		}
		events := results[i].Events
		if len(events) != len(ps[i].EventTypes) {
			return fmt.Errorf("meowmxpgx: round statement wrote %d events of an append of %d", len(events), len(ps[i].EventTypes))
		}
		slices.SortFunc(events, func(a, b meowmxtype.AppendedEvent) int { return cmp.Compare(a.Version, b.Version) })
		results[i].Appended = true
	}
	return nil
}
