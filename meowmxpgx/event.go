package meowmxpgx

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

func (e *executor) EventAppend(ctx context.Context, p *meowmxdriver.EventAppendParams) (*meowmxdriver.EventAppendResult, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	if err := q.checkID(p.Stream.ID); err != nil {
		return nil, err
	}
	if !e.pool {
		return e.appendInTx(ctx, q, p)
	}
	return e.d.appendAlone(ctx, q, p, false)
}

// appendInTx runs an append in the caller's transaction. A unique
// violation has aborted it: nothing more can be read.
func (e *executor) appendInTx(ctx context.Context, q *queries, p *meowmxdriver.EventAppendParams) (*meowmxdriver.EventAppendResult, error) {
	sql, args := q.appendStatement(p)
	rows, _ := e.db.Query(ctx, sql, args...)
	events, err := collectAppended(rows)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	if len(events) > 0 {
		return &meowmxdriver.EventAppendResult{Appended: true, Events: events}, nil
	}
	return e.refused(ctx, q, p)
}

// Retries of appendAlone.
const (
	// deadlockRetries bounds how often an append that PostgreSQL chose as
	// a deadlock's victim is run again: it waited in a cycle of other
	// transactions' locks (two batches that lock new streams in different
	// orders) and wrote nothing.
	deadlockRetries = 3
	// reorderRetries bounds how often an append that its transaction
	// could not order after the stream's last event (ErrReordered) is run
	// again. Each retry locks the stream before its transaction takes an
	// id, so it is overtaken again only when the stream is created
	// concurrently.
	reorderRetries = 10
)

// appendAlone runs an append in a transaction of its own, again when it
// was a deadlock's victim or was reordered; with lockFirst from the start
// in a transaction that locks the stream before it writes (BEGIN, the
// lock, the append, COMMIT: one round trip). A transaction that waits for
// the lock before it takes its id comes after the stream's last writer.
//
// A unique violation is another writer's event at the same version or
// UUID: with UUIDs it is reported as a refusal (the caller finds out
// whether it was this append's earlier attempt), without as ErrDuplicate.
func (d *Driver) appendAlone(ctx context.Context, q *queries, p *meowmxdriver.EventAppendParams, lockFirst bool) (*meowmxdriver.EventAppendResult, error) {
	pool := &executor{d: d, db: d.pool, pool: true}
	deadlocks, reorders := 0, 0
	for {
		events, err := d.appendPooled(ctx, q, p, lockFirst)
		duplicate := sqlState(err) == pgerrcode.UniqueViolation
		switch {
		case sqlState(err) == pgerrcode.DeadlockDetected && deadlocks < deadlockRetries-1:
			deadlocks++
			continue
		case duplicate && p.EventUUIDs != nil:
		case err != nil:
			return nil, interpretError(err, onCommit)
		case len(events) > 0:
			return &meowmxdriver.EventAppendResult{Appended: true, Events: events}, nil
		}
		res, err := pool.refused(ctx, q, p)
		if duplicate && errors.Is(err, meowmxdriver.ErrReordered) {
			// At the expected version, none of its UUIDs stored: another
			// writer's event holds the version (es_events unique key).
			return nil, fmt.Errorf("%w: %s: an event is stored at the next version", meowmxdriver.ErrDuplicate, p.Stream)
		}
		if errors.Is(err, meowmxdriver.ErrReordered) && reorders < reorderRetries-1 {
			reorders, lockFirst = reorders+1, true
			continue
		}
		return res, err
	}
}

// refused looks up the stream of an append that wrote nothing. It returns
// meowmxdriver.ErrReordered when the stream is at the expected version and
// of the append's type, and none of the append's UUIDs is stored: then only
// the order guard (inOrder) can have refused it.
func (e *executor) refused(ctx context.Context, q *queries, p *meowmxdriver.EventAppendParams) (*meowmxdriver.EventAppendResult, error) {
	found, err := e.StreamGet(ctx, &meowmxdriver.StreamGetParams{AggregateID: p.Stream.ID})
	switch {
	case errors.Is(err, meowmxdriver.ErrNotFound):
		return &meowmxdriver.EventAppendResult{}, nil
	case err != nil:
		return nil, err
	case found.StreamID.Type != p.Stream.Type || !p.Expected.Matches(found.Version):
		return &meowmxdriver.EventAppendResult{Stream: found}, nil
	}
	if p.EventUUIDs != nil {
		var stored bool
		if err := e.db.QueryRow(ctx, q.uuidStored, nullableUUIDs(p.EventUUIDs)).Scan(&stored); err != nil {
			return nil, interpretError(err, onRead)
		}
		if stored {
			return &meowmxdriver.EventAppendResult{Stream: found}, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", meowmxdriver.ErrReordered, p.Stream)
}

// appendPooled runs an append statement on a connection of the pool,
// acquired apart so that a failure to get one is known to have sent
// nothing; with lockFirst in a transaction that locks the stream first.
func (d *Driver) appendPooled(ctx context.Context, q *queries, p *meowmxdriver.EventAppendParams, lockFirst bool) ([]meowmxtype.AppendedEvent, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, &acquireError{err}
	}
	defer conn.Release()
	sql, args := q.appendStatement(p)
	if !lockFirst {
		rows, _ := conn.Query(ctx, sql, args...)
		return collectAppended(rows)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(q.streamLock, p.Stream.ID)
	b.Queue(sql, args...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	events, err := func() ([]meowmxtype.AppendedEvent, error) {
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

// appendStatement returns the statement of an append and its arguments.
func (q *queries) appendStatement(p *meowmxdriver.EventAppendParams) (string, []any) {
	kind := appendExact
	switch p.Expected {
	case meowmxtype.AnyVersion:
		kind = appendAny
	case meowmxtype.NoStream:
		kind = appendNoStream
	case meowmxtype.StreamExists:
		kind = appendExists
	}
	args := []any{p.Stream.ID, p.Stream.Type, p.EventTypes, p.Data, nullableText(p.Metadata)}
	withUUIDs := 0
	if p.EventUUIDs != nil {
		withUUIDs = 1
		args = append(args, nullableUUIDs(p.EventUUIDs))
	}
	if kind == appendExact {
		args = append(args, int64(p.Expected))
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
func collectAppended(rows pgx.Rows) ([]meowmxtype.AppendedEvent, error) {
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
	events := make([]meowmxtype.AppendedEvent, len(ids))
	for i, id := range ids {
		events[i] = meowmxtype.AppendedEvent{Version: first + int64(i),
			Position: meowmxtype.Position{TransactionID: txID, EventID: id}, RecordedAt: at}
	}
	return events, nil
}

func (e *executor) EventListByUUID(ctx context.Context, p *meowmxdriver.EventListByUUIDParams) ([]*meowmxtype.RecordedEvent, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	return e.readEvents(ctx, len(p.EventUUIDs), q.listByUUID, nullableUUIDs(p.EventUUIDs))
}

func (e *executor) EventReadAll(ctx context.Context, p *meowmxdriver.EventReadAllParams) ([]*meowmxtype.RecordedEvent, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	sql, args := q.readAllStatement(p)
	if p.Partitions > 1 {
		return e.readEventsInOrder(ctx, min(p.Limit, 64), sql, args...)
	}
	// Readers poll across streams and often find nothing: start small.
	return e.readEvents(ctx, min(p.Limit, 64), sql, args...)
}

// EventScanAll implements meowmxdriver.StreamScanner. A partition's read
// is not streamed: it needs indexOrderSQL before it.
func (e *executor) EventScanAll(ctx context.Context, p *meowmxdriver.EventReadAllParams, each func([]*meowmxtype.RecordedEvent) bool) error {
	if p.Partitions > 1 {
		evs, err := e.EventReadAll(ctx, p)
		if err == nil && len(evs) > 0 {
			each(evs)
		}
		return err
	}
	q, err := e.queries(ctx)
	if err != nil {
		return err
	}
	sql, args := q.readAllStatement(p)
	rows, err := e.db.Query(ctx, sql, args...)
	if err != nil {
		return interpretError(err, onRead)
	}
	return scanEventsEach(rows, each)
}

// filterArgs appends a read's filter to args: byType 0 without aggregate
// types, 2 for one (a text parameter), 1 for more (an array); byEvent 1
// with event types (an array).
func filterArgs(args []any, types, events []string) (_ []any, byType, byEvent int) {
	switch len(types) {
	case 0:
	case 1:
		byType = 2
		args = append(args, types[0])
	default:
		byType = 1
		args = append(args, types)
	}
	if len(events) > 0 {
		byEvent = 1
		args = append(args, events)
	}
	return args, byType, byEvent
}

// readAllStatement returns the query of EventReadAll and its arguments.
func (q *queries) readAllStatement(p *meowmxdriver.EventReadAllParams) (string, []any) {
	args, byType, byEvent := filterArgs([]any{p.After.TransactionID, p.After.EventID, p.Limit}, p.AggregateTypes, p.EventTypes)
	if p.Partitions > 1 {
		return q.partitionRead(byType, byEvent, p.Partitions), append(args, p.Partition)
	}
	return q.readAll[byType][byEvent], args
}

func (e *executor) StreamGet(ctx context.Context, p *meowmxdriver.StreamGetParams) (*meowmxtype.StreamInfo, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	if err := q.checkID(p.AggregateID); err != nil {
		return nil, err
	}
	var s meowmxtype.StreamInfo
	err = e.db.QueryRow(ctx, q.streamGet, p.AggregateID).Scan(&s.StreamID.ID, &s.StreamID.Type, &s.Version)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	return &s, nil
}

func (e *executor) StreamRead(ctx context.Context, p *meowmxdriver.StreamReadParams) ([]*meowmxtype.RecordedEvent, error) {
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
	if p.Limit > streamReadInOrder {
		return e.readEventsInOrder(ctx, p.Limit, q.streamRead[backward], p.AggregateID, p.From, to, p.Limit)
	}
	return e.readEvents(ctx, p.Limit, q.streamRead[backward], p.AggregateID, p.From, to, p.Limit)
}

// StreamScan implements meowmxdriver.StreamScanner: StreamRead, handed
// over in chunks of up to readChunkMax rows as they arrive. In a
// transaction the connection is busy until it returns: the root package
// streams on the pool only.
func (e *executor) StreamScan(ctx context.Context, p *meowmxdriver.StreamReadParams, each func([]*meowmxtype.RecordedEvent) bool) error {
	q, err := e.queries(ctx)
	if err != nil {
		return err
	}
	if err := q.checkID(p.AggregateID); err != nil {
		return err
	}
	to := p.To
	if to < 0 || to > math.MaxInt32 {
		to = math.MaxInt32
	}
	backward := 0
	if p.Backward {
		backward = 1
	}
	if p.Limit <= streamReadInOrder {
		rows, err := e.db.Query(ctx, q.streamRead[backward], p.AggregateID, p.From, to, p.Limit)
		if err != nil {
			return interpretError(err, onRead)
		}
		return scanEventsEach(rows, each)
	}
	rows, done, err := e.queryInOrder(ctx, q.streamRead[backward], p.AggregateID, p.From, to, p.Limit)
	if err != nil {
		return err
	}
	if err := scanEventsEach(rows, each); err != nil {
		_ = done()
		return err
	}
	return done()
}

// readEvents runs a query of eventColumns. It allocates the rows in one
// slice (of up to sizeHint at first) and shares the strings that repeat
// from row to row (aggregate id and type, event type): a stream read
// allocates little more than each payload.
func (e *executor) readEvents(ctx context.Context, sizeHint int, sql string, args ...any) ([]*meowmxtype.RecordedEvent, error) {
	rows, err := e.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	return scanEvents(rows, sizeHint)
}

// indexOrderSQL keeps the planner on the (transaction_id, id) index for
// the statement after it in a batch (an implicit transaction): a
// partition's page reads the events in order and stops at its LIMIT. The
// planner cannot estimate the partition's hash predicate, takes it for
// one row in 200, and would otherwise read and sort every event after the
// checkpoint for each page.
const indexOrderSQL = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true),
	set_config('enable_bitmapscan', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)`

// readEventsInOrder is readEvents with indexOrderSQL before the query
// (see queryInOrder).
func (e *executor) readEventsInOrder(ctx context.Context, sizeHint int, sql string, args ...any) ([]*meowmxtype.RecordedEvent, error) {
	rows, done, err := e.queryInOrder(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	evs, err := scanEvents(rows, sizeHint)
	if err != nil {
		_ = done()
		return nil, err
	}
	return evs, done()
}

// queryInOrder runs sql with indexOrderSQL before it, in one round trip,
// when the executor is the pool (in a caller's transaction the settings
// would outlive the query: it runs as is). done, called once the rows are
// closed, ends the round trip.
func (e *executor) queryInOrder(ctx context.Context, sql string, args ...any) (rows pgx.Rows, done func() error, err error) {
	pool, ok := e.db.(interface {
		SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
	})
	if !e.pool || !ok {
		rows, err := e.db.Query(ctx, sql, args...)
		if err != nil {
			return nil, nil, interpretError(err, onRead)
		}
		return rows, func() error { return nil }, nil
	}
	b := &pgx.Batch{}
	b.Queue(indexOrderSQL)
	b.Queue(sql, args...)
	br := pool.SendBatch(ctx, b)
	done = func() error { return interpretError(br.Close(), onRead) }
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, nil, interpretError(err, onRead)
	}
	if rows, err = br.Query(); err != nil {
		_ = br.Close()
		return nil, nil, interpretError(err, onRead)
	}
	return rows, done, nil
}

// streamReadInOrder is the row count above which a stream read runs with
// indexOrderSQL. With a large LIMIT (a window of IterStream, an aggregate's
// load), the planner took a long stream for the rows its statistics gave
// (2 281 estimated, 37 700 read at 10 million events), read them with a
// bitmap scan and sorted them on disk: 378 ms, against 12 ms in version
// order on the (aggregate_id, version) index, whose rows also stream.
const streamReadInOrder = 64

// scanEvents reads rows of eventColumns and closes them.
func scanEvents(rows pgx.Rows, sizeHint int) ([]*meowmxtype.RecordedEvent, error) {
	defer rows.Close()
	// Rows go into chunks that double up to readChunkMax rows, never
	// copied: the result points into them.
	var sc eventScanner
	chunk := make([]meowmxtype.RecordedEvent, 0, min(max(sizeHint, 1), readChunkMax))
	out := make([]*meowmxtype.RecordedEvent, 0, cap(chunk))
	for rows.Next() {
		if len(chunk) == cap(chunk) {
			chunk = make([]meowmxtype.RecordedEvent, 0, min(2*cap(chunk), readChunkMax))
		}
		chunk = append(chunk, meowmxtype.RecordedEvent{})
		ev := &chunk[len(chunk)-1]
		if err := sc.scan(rows, ev); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err, onRead)
	}
	return out, nil
}

// scanEventsEach reads rows of eventColumns and hands them to each in
// chunks of readChunkMax, then closes them; each returning false drops
// the rest.
func scanEventsEach(rows pgx.Rows, each func([]*meowmxtype.RecordedEvent) bool) error {
	defer rows.Close()
	var sc eventScanner
	var chunk []meowmxtype.RecordedEvent
	var out []*meowmxtype.RecordedEvent
	for rows.Next() {
		if len(chunk) == cap(chunk) {
			chunk = make([]meowmxtype.RecordedEvent, 0, readChunkMax)
			out = make([]*meowmxtype.RecordedEvent, 0, readChunkMax)
		}
		chunk = append(chunk, meowmxtype.RecordedEvent{})
		ev := &chunk[len(chunk)-1]
		if err := sc.scan(rows, ev); err != nil {
			return err
		}
		if out = append(out, ev); len(out) == readChunkMax && !each(out) {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return interpretError(err, onRead)
	}
	if len(out) > 0 && len(out) < readChunkMax {
		each(out)
	}
	return nil
}

// eventScanner scans rows of eventColumns, sharing the strings that repeat
// from row to row.
type eventScanner struct {
	aggID, aggType, eventType pgtype.DriverBytes // valid until the next row
	u                         pgtype.UUID
	at                        pgtype.Timestamptz // NULL: written before the tables were adopted
	ids, aggTypes, eventTypes interner
	// raw is set once the columns are known to come in the binary
	// formats decodeRaw reads: 1 yes, -1 no.
	raw int8
	loc *time.Location // the connection's timestamptz ScanLocation
}

// rawColumns are the types of eventColumns that decodeRaw reads, in their
// binary formats.
var rawColumns = [...]uint32{ //nolint:gochecknoglobals // constant table
	pgtype.Int8OID, pgtype.XID8OID, pgtype.TextOID, pgtype.TextOID, pgtype.Int4OID,
	pgtype.TextOID, pgtype.JSONOID, pgtype.JSONOID, pgtype.UUIDOID, pgtype.TimestamptzOID,
}

// rawOK tells whether rows come as decodeRaw reads them: its column types,
// numbers, UUID and time in binary format, and the connection's own
// timestamptz codec.
func (sc *eventScanner) rawOK(rows pgx.Rows) bool {
	fds := rows.FieldDescriptions()
	if len(fds) != len(rawColumns) || rows.Conn() == nil {
		return false
	}
	for i, fd := range fds {
		// Text and json read the same in both formats.
		textual := fd.DataTypeOID == pgtype.TextOID || fd.DataTypeOID == pgtype.JSONOID
		if fd.DataTypeOID != rawColumns[i] || (fd.Format != pgtype.BinaryFormatCode && !textual) {
			return false
		}
	}
	t, ok := rows.Conn().TypeMap().TypeForOID(pgtype.TimestamptzOID)
	if !ok {
		return false
	}
	c, ok := t.Codec.(*pgtype.TimestamptzCodec)
	if !ok {
		return false
	}
	sc.loc = c.ScanLocation
	return true
}

// pgEpoch is PostgreSQL's timestamp epoch, 2000-01-01 UTC, in Unix
// microseconds.
const pgEpoch = 946_684_800 * 1_000_000

// decodeRaw decodes a row of eventColumns from its binary values, as
// rows.Scan would, at a fraction of the cost (Scan was a third of a long
// stream read's CPU). It returns false for what it does not read (a NULL
// where none is expected, an infinite time): Scan then reads the row, and
// reports the error.
func (sc *eventScanner) decodeRaw(rows pgx.Rows, ev *meowmxtype.RecordedEvent) bool {
	v := rows.RawValues()
	if len(v[0]) != 8 || len(v[1]) != 8 || v[2] == nil || v[3] == nil || len(v[4]) != 4 || v[5] == nil ||
		v[6] == nil || (v[8] != nil && len(v[8]) != 16) || (v[9] != nil && len(v[9]) != 8) {
		return false
	}
	var us int64
	if v[9] != nil { // NULL: written before the tables were adopted
		us = int64(binary.BigEndian.Uint64(v[9]))
		if us == math.MaxInt64 || us == math.MinInt64 {
			return false
		}
	}
	ev.Position.EventID = int64(binary.BigEndian.Uint64(v[0]))
	ev.Position.TransactionID = binary.BigEndian.Uint64(v[1])
	ev.StreamID.ID = sc.ids.last(v[2])
	ev.StreamID.Type = sc.aggTypes.get(v[3])
	ev.Version = int64(int32(binary.BigEndian.Uint32(v[4])))
	ev.Type = sc.eventTypes.get(v[5])
	ev.Data = bytes.Clone(v[6])
	if v[7] != nil {
		ev.Metadata = bytes.Clone(v[7])
	}
	if v[8] != nil {
		ev.UUID = [16]byte(v[8])
	}
	if v[9] != nil {
		t := time.UnixMicro(pgEpoch + us)
		if sc.loc != nil {
			t = t.In(sc.loc)
		}
		ev.RecordedAt = t
	}
	return true
}

func (sc *eventScanner) scan(rows pgx.Rows, ev *meowmxtype.RecordedEvent) error {
	if sc.raw == 0 {
		sc.raw = -1
		if sc.rawOK(rows) {
			sc.raw = 1
		}
	}
	if sc.raw == 1 && sc.decodeRaw(rows, ev) {
		return nil
	}
	if err := rows.Scan(&ev.Position.EventID, &ev.Position.TransactionID, &sc.aggID, &sc.aggType, &ev.Version,
		&sc.eventType, (*[]byte)(&ev.Data), (*[]byte)(&ev.Metadata), &sc.u, &sc.at); err != nil {
		return interpretError(err, onRead)
	}
	if sc.at.Valid && sc.at.InfinityModifier != pgtype.Finite {
		return fmt.Errorf("%w: an event recorded at %s", meowmxdriver.ErrInvalidInput, sc.at.InfinityModifier)
	}
	ev.RecordedAt = time.Time{}
	if sc.at.Valid {
		ev.RecordedAt = sc.at.Time
	}
	ev.StreamID.ID = sc.ids.last(sc.aggID)
	ev.StreamID.Type = sc.aggTypes.get(sc.aggType)
	ev.Type = sc.eventTypes.get(sc.eventType)
	if sc.u.Valid {
		ev.UUID = sc.u.Bytes
	}
	return nil
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
