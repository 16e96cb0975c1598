package meowmxpgx

import (
	"context"
	"errors"
	"math"
	"slices"

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
	sql := q.append[kind][withUUIDs]
	if !e.pool && q.appendNotify[kind][withUUIDs] != "" {
		sql = q.appendNotify[kind][withUUIDs] // the caller commits: notify at its commit
	}
	rows, _ := e.db.Query(ctx, sql, args...)
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (meowmxdriver.AppendedEvent, error) {
		var a meowmxdriver.AppendedEvent
		err := row.Scan(&a.ID, &a.TransactionID, &a.Version, &a.RecordedAt)
		return a, err
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" { // unique_violation
			return nil, interpretError(err)
		}
		if !e.pool {
			// The caller's transaction is aborted: nothing more can be read.
			return nil, errors.Join(meowmxdriver.ErrDuplicate, interpretError(err))
		}
	}
	if len(events) == len(p.EventTypes) {
		slices.SortFunc(events, func(a, b meowmxdriver.AppendedEvent) int { return int(a.Version - b.Version) })
		return &meowmxdriver.EventAppendResult{Appended: true, Events: events}, nil
	}
	res := &meowmxdriver.EventAppendResult{}
	res.Stream, err = e.StreamGet(ctx, &meowmxdriver.StreamGetParams{AggregateID: p.AggregateID})
	if errors.Is(err, meowmxdriver.ErrNotFound) {
		return res, nil
	}
	return res, err
}

func (e *executor) EventListByUUID(ctx context.Context, p *meowmxdriver.EventListByUUIDParams) ([]*meowmxdriver.EventRow, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	return e.readEvents(ctx, q.listByUUID, nullableUUIDs(p.EventUUIDs))
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
	return e.readEvents(ctx, q.readAll[byType][byEvent], args...)
}

func (e *executor) StreamGet(ctx context.Context, p *meowmxdriver.StreamGetParams) (*meowmxdriver.StreamRow, error) {
	q, err := e.queries(ctx)
	if err != nil {
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
	to := p.To
	if to < 0 || to > math.MaxInt32 {
		to = math.MaxInt32
	}
	backward := 0
	if p.Backward {
		backward = 1
	}
	return e.readEvents(ctx, q.streamRead[backward], p.AggregateID, p.From, to, p.Limit)
}

func (e *executor) readEvents(ctx context.Context, sql string, args ...any) ([]*meowmxdriver.EventRow, error) {
	rows, _ := e.db.Query(ctx, sql, args...)
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, interpretError(err)
	}
	return events, nil
}

func scanEvent(row pgx.CollectableRow) (*meowmxdriver.EventRow, error) {
	var ev meowmxdriver.EventRow
	var u pgtype.UUID
	err := row.Scan(&ev.ID, &ev.TransactionID, &ev.AggregateID, &ev.AggregateType, &ev.Version,
		&ev.EventType, &ev.Data, &ev.Metadata, &u, &ev.RecordedAt)
	if u.Valid {
		ev.EventUUID = u.Bytes[:]
	}
	return &ev, err
}

func nullableText(values [][]byte) []pgtype.Text {
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
