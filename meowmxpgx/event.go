package meowmxpgx

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/meowmx/meowmx/meowmxdriver"
)

func (e *executor) EventAppend(ctx context.Context, p *meowmxdriver.EventAppendParams) (*meowmxdriver.EventAppendResult, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	if err := q.checkID(p.AggregateID); err != nil {
		return nil, err
	}
	sql, args := q.appendStatement(p)
	events, err := e.appendRows(ctx, q, p, sql, args)
	if err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" { // unique_violation
			if e.pool {
				return nil, writeError(err, true)
			}
			return nil, interpretError(err)
		}
		if !e.pool {
			// The caller's transaction is aborted: nothing more can be read.
			return nil, errors.Join(meowmxdriver.ErrDuplicate, interpretError(err))
		}
	}
	res := appendOutcome(p, events)
	if res.Appended {
		return res, nil
	}
	res.Stream, err = e.StreamGet(ctx, &meowmxdriver.StreamGetParams{AggregateID: p.AggregateID})
	if errors.Is(err, meowmxdriver.ErrNotFound) {
		return res, nil
	}
	return res, err
}

// appendRows runs an append statement. On the pool it acquires the
// connection apart, so that a failure to get one is known to have sent
// nothing; with p.LockFirst it runs BEGIN, a statement that locks the
// stream, the append and COMMIT, in one round trip. An append of its own
// that PostgreSQL chose as a deadlock's victim (it waited in a cycle of
// other transactions' locks, such as two batches that lock new streams
// in different orders) wrote nothing, and is run again, up to
// deadlockRetries times.
func (e *executor) appendRows(ctx context.Context, q *queries, p *meowmxdriver.EventAppendParams, sql string, args []any) ([]meowmxdriver.AppendedEvent, error) {
	if !e.pool {
		rows, _ := e.db.Query(ctx, sql, args...)
		return collectAppended(rows)
	}
	for attempt := 1; ; attempt++ {
		events, err := e.appendPooled(ctx, q, p, sql, args)
		var pgErr *pgconn.PgError
		if attempt < deadlockRetries && errors.As(err, &pgErr) && pgErr.Code == "40P01" { // deadlock_detected
			continue
		}
		return events, err
	}
}

// deadlockRetries bounds how often an append of its own is run when it
// is a deadlock's victim.
const deadlockRetries = 3

func (e *executor) appendPooled(ctx context.Context, q *queries, p *meowmxdriver.EventAppendParams, sql string, args []any) ([]meowmxdriver.AppendedEvent, error) {
	conn, err := e.d.pool.Acquire(ctx)
	if err != nil {
		return nil, &acquireError{err}
	}
	defer conn.Release()
	if !p.LockFirst {
		rows, _ := conn.Query(ctx, sql, args...)
		return collectAppended(rows)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(q.streamLock, p.AggregateID)
	b.Queue(sql, args...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	events, err := func() ([]meowmxdriver.AppendedEvent, error) {
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return nil, err
			}
		}
		rows, _ := br.Query()
		events, err := collectAppended(rows)
		if err != nil {
			return nil, err
		}
		_, err = br.Exec()
		return events, err
	}()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		rollbackOpen(ctx, conn.Conn())
	}
	return events, err
}

// acquireError is a failure to get a connection from the pool: nothing
// was sent.
type acquireError struct{ err error }

func (e *acquireError) Error() string     { return e.err.Error() }
func (e *acquireError) Unwrap() error     { return e.err }
func (e *acquireError) SafeToRetry() bool { return true }

// appendStatement returns the statement of an append and its arguments.
func (q *queries) appendStatement(p *meowmxdriver.EventAppendParams) (string, []any) {
	kind := appendExact
	switch p.Expected {
	case meowmxdriver.ExpectedAny:
		kind = appendAny
	case meowmxdriver.ExpectedNoStream:
		kind = appendNoStream
	case meowmxdriver.ExpectedStreamExists:
		kind = appendExists
	}
	args := []any{p.AggregateID, p.AggregateType, p.EventTypes, p.Data, nullableText(p.Metadata)}
	withUUIDs := 0
	if p.EventUUIDs != nil {
		withUUIDs = 1
		args = append(args, nullableUUIDs(p.EventUUIDs))
	}
	if kind == appendExact {
		args = append(args, p.Expected)
	}
	many := 0
	if len(p.EventTypes) > 1 {
		many = 1
	}
	return q.append[kind][withUUIDs][many], args
}

// collectAppended reads the result of an append statement: no row when
// the append was refused, else one row with the events' transaction id,
// time, first version and ids.
func collectAppended(rows pgx.Rows) ([]meowmxdriver.AppendedEvent, error) {
	var (
		txID  uint64
		at    time.Time
		first int64
		ids   []int64
	)
	_, err := pgx.CollectOneRow(rows, func(row pgx.CollectableRow) (struct{}, error) {
		return struct{}{}, row.Scan(&txID, &at, &first, &ids)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	events := make([]meowmxdriver.AppendedEvent, len(ids))
	for i, id := range ids {
		events[i] = meowmxdriver.AppendedEvent{ID: id, TransactionID: txID, Version: first + int64(i), RecordedAt: at}
	}
	return events, nil
}

func (e *executor) EventListByUUID(ctx context.Context, p *meowmxdriver.EventListByUUIDParams) ([]*meowmxdriver.EventRow, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	return e.readEvents(ctx, len(p.EventUUIDs), q.listByUUID, nullableUUIDs(p.EventUUIDs))
}

func (e *executor) EventReadAll(ctx context.Context, p *meowmxdriver.EventReadAllParams) ([]*meowmxdriver.EventRow, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	args := []any{p.AfterTransactionID, p.AfterID, p.Limit}
	byType, byEvent := 0, 0
	if len(p.AggregateTypes) > 0 {
		byType = 1
		args = append(args, p.AggregateTypes)
	}
	if len(p.EventTypes) > 0 {
		byEvent = 1
		args = append(args, p.EventTypes)
	}
	// Readers poll across streams and often find nothing: start small.
	return e.readEvents(ctx, min(p.Limit, 64), q.readAll[byType][byEvent], args...)
}

func (e *executor) StreamGet(ctx context.Context, p *meowmxdriver.StreamGetParams) (*meowmxdriver.StreamRow, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	if err := q.checkID(p.AggregateID); err != nil {
		return nil, err
	}
	var s meowmxdriver.StreamRow
	err = e.db.QueryRow(ctx, q.streamGet, p.AggregateID).Scan(&s.AggregateID, &s.AggregateType, &s.Version)
	if err != nil {
		return nil, interpretError(err)
	}
	return &s, nil
}

func (e *executor) StreamRead(ctx context.Context, p *meowmxdriver.StreamReadParams) ([]*meowmxdriver.EventRow, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	if err := q.checkID(p.AggregateID); err != nil {
		return nil, err
	}
	to := p.To
	if to < 0 || to > math.MaxInt32 {
		to = math.MaxInt32
	}
	backward := 0
	if p.Backward {
		backward = 1
	}
	return e.readEvents(ctx, p.Limit, q.streamRead[backward], p.AggregateID, p.From, to, p.Limit)
}

// readEvents runs a query of eventColumns. It allocates the rows in one
// slice (of up to sizeHint at first) and shares the strings that repeat
// from row to row (aggregate id and type, event type): a stream read
// allocates little more than each payload.
func (e *executor) readEvents(ctx context.Context, sizeHint int, sql string, args ...any) ([]*meowmxdriver.EventRow, error) {
	rows, err := e.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	// Rows go into chunks that double up to readChunkMax rows, never
	// copied: the result points into them.
	chunk := make([]meowmxdriver.EventRow, 0, min(max(sizeHint, 1), readChunkMax))
	out := make([]*meowmxdriver.EventRow, 0, cap(chunk))
	var (
		aggID, aggType, eventType pgtype.DriverBytes // valid until the next row
		u                         pgtype.UUID
		ids, aggTypes, eventTypes interner
	)
	for rows.Next() {
		if len(chunk) == cap(chunk) {
			chunk = make([]meowmxdriver.EventRow, 0, min(2*cap(chunk), readChunkMax))
		}
		chunk = append(chunk, meowmxdriver.EventRow{})
		ev := &chunk[len(chunk)-1]
		if err := rows.Scan(&ev.ID, &ev.TransactionID, &aggID, &aggType, &ev.Version,
			&eventType, &ev.Data, &ev.Metadata, &u, &ev.RecordedAt); err != nil {
			return nil, interpretError(err)
		}
		ev.AggregateID = ids.last(aggID)
		ev.AggregateType = aggTypes.get(aggType)
		ev.EventType = eventTypes.get(eventType)
		if u.Valid {
			ev.EventUUID = append([]byte(nil), u.Bytes[:]...)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err)
	}
	return out, nil
}

// readChunkMax is the most rows readEvents allocates at once.
const readChunkMax = 256

// interner returns strings for bytes, reusing the strings it returned
// before for the same bytes.
type interner struct {
	prev string
	seen map[string]string
}

// interned caps how many distinct strings an interner keeps.
const interned = 256

// last returns b as a string, the previous one when b has not changed.
func (in *interner) last(b []byte) string {
	if string(b) != in.prev { // compares without allocating
		in.prev = string(b)
	}
	return in.prev
}

// get returns b as a string, one returned before when there is one.
func (in *interner) get(b []byte) string {
	if string(b) == in.prev {
		return in.prev
	}
	s, ok := in.seen[string(b)]
	if !ok {
		s = string(b)
		if in.seen == nil {
			in.seen = make(map[string]string)
		}
		if len(in.seen) < interned {
			in.seen[s] = s
		}
	}
	in.prev = s
	return s
}

func nullableText(values [][]byte) []pgtype.Text {
	if !slices.ContainsFunc(values, func(v []byte) bool { return v != nil }) {
		return nil
	}
	out := make([]pgtype.Text, len(values))
	for i, v := range values {
		if v != nil {
			out[i] = pgtype.Text{String: string(v), Valid: true}
		}
	}
	return out
}

func nullableUUIDs(values [][]byte) []pgtype.UUID {
	out := make([]pgtype.UUID, len(values))
	for i, v := range values {
		if len(v) == 16 {
			out[i] = pgtype.UUID{Bytes: [16]byte(v), Valid: true}
		}
	}
	return out
}
