package meowmxsqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// timeFormat is how created_at is stored: UTC, fixed width, so that text
// order is time order.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

func (e *executor) EventAppend(ctx context.Context, p *meowmxdriver.EventAppendParams) (*meowmxdriver.EventAppendResult, error) {
	var res *meowmxdriver.EventAppendResult
	queries := []string{guardSQL(p.Expected), streamGetSQL}
	if p.EventUUIDs != nil {
		queries = append(queries, uuidTakenSQL)
	}
	if n := len(p.EventTypes); n <= preparedInserts {
		queries = append(queries, insertEventsSQL(n))
	}
	err := e.inWriteTx(ctx, queries, func(tx txStmts) (bool, error) {
		var err error
		res, err = appendEvents(ctx, tx, p)
		return err == nil && res.Appended, err
	})
	if err != nil {
		// Holding the write lock, appendEvents checks versions and UUIDs
		// first: a unique violation (ErrDuplicate) means rows that another
		// client wrote without moving es_aggregates. The savepoint undid
		// the append, and a caller's transaction goes on.
		return nil, interpretError(err)
	}
	return res, nil
}

// appendEvents runs an append in tx, which holds the write lock.
func appendEvents(ctx context.Context, tx txStmts, p *meowmxdriver.EventAppendParams) (*meowmxdriver.EventAppendResult, error) {
	n := len(p.EventTypes)
	if p.EventUUIDs != nil {
		var one int
		err := tx.QueryRowContext(ctx, uuidTakenSQL, uuidsJSON(p.EventUUIDs)).Scan(&one)
		if err == nil {
			return refused(ctx, tx, p.Stream.ID)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
	}
	args := []any{p.Stream.ID, p.Stream.Type, n}
	if p.Expected >= 0 {
		args = append(args, int64(p.Expected))
	}
	var last int64
	err := tx.QueryRowContext(ctx, guardSQL(p.Expected), args...).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return refused(ctx, tx, p.Stream.ID)
	}
	if err != nil {
		return nil, err
	}

	// The time of the events, as stored (microseconds): the append
	// returns it without reading it back.
	at := time.Now().UTC().Truncate(time.Microsecond)
	now := at.Format(timeFormat)
	events := make([]meowmxtype.AppendedEvent, 0, n)
	for start := 0; start < n; start += insertBatch {
		end := min(start+insertBatch, n)
		args := make([]any, 0, (end-start)*insertColumns)
		for i := start; i < end; i++ {
			args = append(args, p.Stream.ID, last-int64(n-1-i), p.EventTypes[i], string(p.Data[i]),
				nullableText(p.Metadata[i]), nullableUUID(p.EventUUIDs, i), now)
		}
		rows, err := tx.QueryContext(ctx, insertEventsSQL(end-start), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			a := meowmxtype.AppendedEvent{RecordedAt: at}
			if err := rows.Scan(&a.Position.EventID, &a.Version); err != nil {
				rows.Close()
				return nil, err
			}
			events = append(events, a)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
	}
	if len(events) != n {
		return nil, fmt.Errorf("meowmxsqlite: append wrote %d events of %d", len(events), n)
	}
	// RETURNING gives rows in no promised order.
	slices.SortFunc(events, func(a, b meowmxtype.AppendedEvent) int { return int(a.Version - b.Version) })
	return &meowmxdriver.EventAppendResult{Appended: true, Events: events}, nil
}

// refused returns the result of an append that wrote nothing: the stream
// as found, or none.
func refused(ctx context.Context, tx txStmts, id string) (*meowmxdriver.EventAppendResult, error) {
	res := &meowmxdriver.EventAppendResult{}
	var s meowmxtype.StreamInfo
	err := tx.QueryRowContext(ctx, streamGetSQL, id).Scan(&s.StreamID.ID, &s.StreamID.Type, &s.Version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return res, nil
	case err != nil:
		return nil, err
	}
	res.Stream = &s
	return res, nil
}

func (e *executor) EventListByUUID(ctx context.Context, p *meowmxdriver.EventListByUUIDParams) ([]*meowmxtype.RecordedEvent, error) {
	return e.readEvents(ctx, listByUUIDSQL, uuidsJSON(p.EventUUIDs))
}

func (e *executor) EventReadAll(ctx context.Context, p *meowmxdriver.EventReadAllParams) ([]*meowmxtype.RecordedEvent, error) {
	// Every event is at transaction id 0: nothing is after a position with
	// another one.
	if p.After.TransactionID > 0 {
		return nil, nil
	}
	args := []any{p.After.EventID, p.Limit}
	byType, byEvent := 0, 0
	if len(p.AggregateTypes) > 0 || len(p.EventTypes) > 0 {
		args = append(args, stringsJSON(p.AggregateTypes))
		if len(p.AggregateTypes) > 0 {
			byType = 1
		}
	}
	if len(p.EventTypes) > 0 {
		byEvent = 1
		args = append(args, stringsJSON(p.EventTypes))
	}
	partitioned := 0
	if p.Partitions > 1 {
		partitioned = 1
		args = append(args[:2], stringsJSON(p.AggregateTypes), stringsJSON(p.EventTypes), p.Partitions, p.Partition)
	}
	return e.readEvents(ctx, readAllSQL[byType][byEvent][partitioned], args...)
}

func (e *executor) StreamGet(ctx context.Context, p *meowmxdriver.StreamGetParams) (*meowmxtype.StreamInfo, error) {
	rows, err := e.query(ctx, streamGetSQL, p.AggregateID)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, interpretError(cmp.Or(rows.Err(), sql.ErrNoRows))
	}
	var s meowmxtype.StreamInfo
	if err := rows.Scan(&s.StreamID.ID, &s.StreamID.Type, &s.Version); err != nil {
		return nil, interpretError(err)
	}
	return &s, nil
}

func (e *executor) StreamRead(ctx context.Context, p *meowmxdriver.StreamReadParams) ([]*meowmxtype.RecordedEvent, error) {
	to := p.To
	if to < 0 {
		to = math.MaxInt64
	}
	backward := 0
	if p.Backward {
		backward = 1
	}
	return e.readEvents(ctx, streamReadSQL[backward], p.AggregateID, p.From, to, p.Limit)
}

func (e *executor) readEvents(ctx context.Context, query string, args ...any) ([]*meowmxtype.RecordedEvent, error) {
	rows, err := e.query(ctx, query, args...)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var out []*meowmxtype.RecordedEvent
	for rows.Next() {
		var ev meowmxtype.RecordedEvent
		var at string
		var u []byte
		if err := rows.Scan(&ev.Position.EventID, &ev.Position.TransactionID, &ev.StreamID.ID, &ev.StreamID.Type, &ev.Version,
			&ev.Type, (*[]byte)(&ev.Data), (*[]byte)(&ev.Metadata), &u, &at); err != nil {
			return nil, interpretError(err)
		}
		if len(u) == 16 {
			ev.UUID = uuid.UUID(u)
		}
		var err error
		if ev.RecordedAt, err = parseTime(at); err != nil {
			return nil, err
		}
		out = append(out, &ev)
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err)
	}
	return out, nil
}

// query runs a read: on the caller's transaction, or prepared on the read
// pool.
func (e *executor) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if e.tx != nil {
		return e.tx.QueryContext(ctx, query, args...)
	}
	s, err := e.d.readStmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// parseTime reads created_at; "" (NULL: an event that the Python client
// wrote before the file was adopted) is the zero time, unknown.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("meowmxsqlite: created_at %q: %w", s, err)
	}
	return t, nil
}

func nullableText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func nullableUUID(uuids [][]byte, i int) any {
	if uuids == nil || len(uuids[i]) != 16 {
		return nil
	}
	return uuids[i]
}

// uuidsJSON encodes UUIDs as a JSON array of hex strings, for json_each.
func uuidsJSON(uuids [][]byte) string {
	out := make([]string, 0, len(uuids))
	for _, u := range uuids {
		if len(u) == 16 {
			out = append(out, hex.EncodeToString(u))
		}
	}
	return stringsJSON(out)
}

func stringsJSON(s []string) string {
	if s == nil {
		s = []string{}
	}
	b, _ := json.Marshal(s) // strings always encode
	return string(b)
}
