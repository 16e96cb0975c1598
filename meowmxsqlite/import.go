package meowmxsqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// EventImport implements meowmxdriver.Importer with batched INSERTs (up
// to insertBatch events a statement), a write transaction per batch, one
// batch at a time: it reads the batch's streams, keeps the events past
// each stream's stored version (meowmxdriver.ImportPlan), moves the
// streams' versions and inserts the events in the order given.
func (e *executor) EventImport(ctx context.Context, p *meowmxdriver.EventImportParams) (*meowmxdriver.EventImportResult, error) {
	res := &meowmxdriver.EventImportResult{}
	for evs, err := range p.Batches {
		if err != nil {
			return res, err
		}
		r, err := e.importBatch(ctx, evs)
		if err != nil {
			return res, err
		}
		res.Written += r.Written
		res.Skipped += r.Skipped
		if p.Progress != nil {
			p.Progress(*res)
		}
	}
	return res, nil
}

func (e *executor) importBatch(ctx context.Context, evs []*meowmxtype.RecordedEvent) (*meowmxdriver.EventImportResult, error) {
	var res *meowmxdriver.EventImportResult
	err := e.inWriteTx(ctx, nil, func(tx txStmts) (bool, error) {
		plan := meowmxdriver.NewImportPlan(evs)
		for i, id := range plan.IDs {
			var s meowmxtype.StreamInfo
			err := tx.QueryRowContext(ctx, streamGetSQL, id).Scan(&s.StreamID.ID, &s.StreamID.Type, &s.Version)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				continue
			case err != nil:
				return false, err
			}
			plan.SetStored(i, s)
		}
		if err := plan.Check(); err != nil {
			return false, err
		}
		for _, i := range plan.Moves {
			s := plan.Stream(i)
			if _, err := tx.ExecContext(ctx, `INSERT INTO es_aggregates (id, version, aggregate_type) VALUES (?1, ?2, ?3)
				ON CONFLICT (id) DO UPDATE SET version = excluded.version`, s.StreamID.ID, s.Version, s.StreamID.Type); err != nil {
				return false, err
			}
		}
		now := time.Now().UTC().Format(timeFormat)
		for start := 0; start < len(plan.Events); start += insertBatch {
			end := min(start+insertBatch, len(plan.Events))
			args := make([]any, 0, (end-start)*insertColumns)
			for _, ev := range plan.Events[start:end] {
				var u any
				if ev.UUID != (uuid.UUID{}) {
					u = ev.UUID[:]
				}
				at := now
				if !ev.RecordedAt.IsZero() {
					at = ev.RecordedAt.UTC().Format(timeFormat)
				}
				args = append(args, ev.StreamID.ID, ev.Version, ev.Type, string(ev.Data), nullableText(ev.Metadata), u, at)
			}
			rows, err := tx.QueryContext(ctx, insertEventsSQL(end-start), args...)
			if err != nil {
				return false, err
			}
			if err := rows.Close(); err != nil {
				return false, err
			}
		}
		res = &meowmxdriver.EventImportResult{Written: int64(len(plan.Events)), Skipped: int64(len(evs) - len(plan.Events))}
		return true, nil
	})
	if errors.Is(err, meowmxdriver.ErrImportRefused) {
		return nil, err
	}
	if err != nil {
		return nil, interpretError(err)
	}
	return res, nil // the probe finds the new events (max(id)) and wakes subscribers
}
