package meowmxpgx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

var importColumns = []string{"transaction_id", "aggregate_id", "version", "event_type", "json_data", "metadata", "event_uuid", "created_at", "aggregate_type"} //nolint:gochecknoglobals // constant table

// EventImport implements meowmxdriver.Importer, in one transaction: it
// locks the batch's streams (es_aggregates, FOR UPDATE), keeps the events
// past each stream's stored version (meowmxdriver.PlanImport), moves the
// streams' versions, and copies the events (COPY) straight into es_events
// with the transaction's id, so that their ids follow the batch's order.
// An event UUID stored already fails the batch (ErrDuplicate). Events
// written by it wake subscribers through the probe, as other writers' do.
func (e *executor) EventImport(ctx context.Context, p *meowmxdriver.EventImportParams) (*meowmxdriver.EventImportResult, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	for _, ev := range p.Events {
		if err := q.checkID(ev.StreamID.ID); err != nil {
			return nil, err
		}
	}
	// In the caller's transaction, a savepoint.
	b, ok := e.db.(interface {
		Begin(ctx context.Context) (pgx.Tx, error)
	})
	if !ok {
		return nil, fmt.Errorf("meowmxpgx: import: %T cannot begin a transaction", e.db)
	}
	tx, err := b.Begin(ctx)
	if err != nil {
		return nil, interpretError(err, onWrite)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	res, err := e.d.importTx(ctx, tx, q, p.Events)
	switch {
	case errors.Is(err, meowmxdriver.ErrImportRefused), errors.Is(err, meowmxdriver.ErrInvalidInput):
		return nil, err
	case err != nil:
		return nil, interpretError(err, onWrite)
	}
	st := onCommit
	if !e.pool {
		st = onRead // the caller's transaction commits
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, interpretError(err, st)
	}
	return res, nil
}

func (d *Driver) importTx(ctx context.Context, tx pgx.Tx, q *queries, evs []*meowmxtype.RecordedEvent) (*meowmxdriver.EventImportResult, error) {
	s := d.quoted
	var xid uint64
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&xid); err != nil {
		return nil, err
	}
	seen := make(map[string]bool)
	var ids []string
	for _, ev := range evs {
		if !seen[ev.StreamID.ID] {
			seen[ev.StreamID.ID] = true
			ids = append(ids, ev.StreamID.ID)
		}
	}
	rows, _ := tx.Query(ctx, q.streamGets+` ORDER BY id FOR UPDATE`, ids)
	stored := make(map[string]meowmxtype.StreamInfo, len(ids))
	var si meowmxtype.StreamInfo
	if _, err := pgx.ForEachRow(rows, []any{&si.StreamID.ID, &si.StreamID.Type, &si.Version}, func() error {
		stored[si.StreamID.ID] = si
		return nil
	}); err != nil {
		return nil, err
	}
	plan, err := meowmxdriver.PlanImport(evs, stored)
	if err != nil {
		return nil, err
	}
	if len(plan.Events) == 0 {
		return &meowmxdriver.EventImportResult{Skipped: len(evs)}, nil
	}
	sIDs, sTypes, sVersions := make([]string, len(plan.Streams)), make([]string, len(plan.Streams)), make([]int64, len(plan.Streams))
	for i, st := range plan.Streams {
		sIDs[i], sTypes[i], sVersions[i] = st.StreamID.ID, st.StreamID.Type, st.Version
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.es_aggregates AS a (id, version, aggregate_type, last_transaction_id)
		SELECT i`+q.cast+`, v, t, pg_current_xact_id() FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(i, v, t)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, last_transaction_id = excluded.last_transaction_id`,
		sIDs, sVersions, sTypes); err != nil {
		return nil, err
	}
	i := 0
	n, err := tx.CopyFrom(ctx, pgx.Identifier{d.schema, "es_events"}, importColumns, pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(plan.Events) {
			return nil, nil
		}
		ev := plan.Events[i]
		i++
		var id any = ev.StreamID.ID
		if q.idKind == idUUID {
			u, err := uuid.Parse(ev.StreamID.ID)
			if err != nil {
				return nil, fmt.Errorf("%w: aggregate id %q is not a UUID", meowmxdriver.ErrInvalidInput, ev.StreamID.ID)
			}
			id = pgtype.UUID{Bytes: u, Valid: true}
		}
		var meta any
		if ev.Metadata != nil {
			meta = []byte(ev.Metadata)
		}
		var u pgtype.UUID
		if ev.UUID != (uuid.UUID{}) {
			u = pgtype.UUID{Bytes: ev.UUID, Valid: true}
		}
		at := pgtype.Timestamptz{Time: ev.RecordedAt, Valid: true}
		if ev.RecordedAt.IsZero() {
			at.Time = time.Now()
		}
		return []any{xid, id, int32(ev.Version), ev.Type, []byte(ev.Data), meta, u, at, ev.StreamID.Type}, nil
	}))
	if err != nil {
		return nil, err
	}
	return &meowmxdriver.EventImportResult{Written: int(n), Skipped: len(evs) - int(n)}, nil
}
