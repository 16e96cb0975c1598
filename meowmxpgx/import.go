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

var importColumns = []string{"transaction_id", "aggregate_id", "version", "event_type", "json_data", "metadata", "event_uuid", "created_at", "aggregate_type", "partition_hash"} //nolint:gochecknoglobals // constant table

// importDepth is how many batches an import on the pool has in flight: one
// copied while the one before it commits. One server backend inserting
// into es_events with its indexes is the import's ceiling on a small
// machine; two run 1.2 to 1.5 times as fast.
const importDepth = 2

// errBatchBefore fails a batch whose predecessor failed.
var errBatchBefore = errors.New("meowmxpgx: import: a batch before failed")

// EventImport implements meowmxdriver.Importer. Each batch is a
// transaction: it takes its transaction id, locks its streams
// (es_aggregates, FOR UPDATE), keeps the events past each stream's version
// (meowmxdriver.ImportPlan), copies them (COPY) straight into es_events
// with the transaction's id and their partition hashes, moves the
// streams' versions and commits. An event UUID stored already fails the
// batch (ErrDuplicate). Events written by it wake subscribers through the
// probe, as other writers' do.
//
// On the pool, importDepth batches are in flight, each on its own
// connection: a batch is planned once the one before it has taken its
// transaction id and locked its streams, so that positions follow the
// batches' order, and commits only after the one before it has, so that
// a failure leaves no batch after it written. Versions of streams that a
// batch in flight writes are planned from that batch, not read. Tables
// with a foreign key from es_events to es_aggregates (the Python client
// may create one) take one batch at a time: the key's check does not see
// a stream created by a batch that has not committed. In a caller's
// transaction, each batch is a savepoint.
func (e *executor) EventImport(ctx context.Context, p *meowmxdriver.EventImportParams) (*meowmxdriver.EventImportResult, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	depth := 1
	if e.pool {
		var fk bool
		if err := e.db.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f')`,
			e.d.quoted+".es_events").Scan(&fk); err != nil {
			return nil, interpretError(err, onRead)
		}
		if !fk {
			depth = importDepth
		}
	}
	res := &meowmxdriver.EventImportResult{}
	var (
		flight   []*importBatch // in order, not yet reaped
		firstErr error
		failed   bool // a batch reaped failed
	)
	// reap waits for the oldest batch in flight and counts it. The batches
	// in flight come before any batch that failed to start, so the first
	// of them to fail has the import's error.
	reap := func() {
		b := flight[0]
		flight = flight[1:]
		<-b.done
		switch {
		case b.err == nil:
			res.Written += int64(len(b.plan.Events))
			res.Skipped += int64(b.size - len(b.plan.Events))
			if p.Progress != nil {
				p.Progress(*res)
			}
		case !failed:
			failed, firstErr = true, b.err
		}
	}
	for evs, err := range p.Batches {
		if err == nil && len(flight) > 0 && sharesUUID(evs, flight) {
			// The unique index would make the later batch wait for the
			// earlier, or the earlier for the later, which waits for it
			// to commit: write it after.
			for len(flight) > 0 {
				reap()
			}
		}
		for len(flight) > 0 && (len(flight) == depth || flight[0].finished()) {
			reap()
		}
		if firstErr != nil {
			break
		}
		if err != nil {
			firstErr = err
			break
		}
		if len(evs) == 0 {
			continue
		}
		b, err := e.startBatch(ctx, q, evs, flight)
		if err != nil {
			firstErr = err
			break
		}
		var prev *importBatch
		if len(flight) > 0 {
			prev = flight[len(flight)-1]
		}
		flight = append(flight, b)
		if depth == 1 {
			b.finish(ctx, e, q, prev)
		} else {
			go b.finish(ctx, e, q, prev)
		}
	}
	for len(flight) > 0 {
		reap()
	}
	return res, firstErr
}

// importBatch is a batch of an import, from startBatch to its commit.
type importBatch struct {
	tx    pgx.Tx
	xid   uint64
	size  int                      // events given
	plan  *meowmxdriver.ImportPlan // its streams as it leaves them, for the batches after
	later []meowmxtype.StreamInfo  // streams a batch in flight writes: moved in finish
	uuids map[uuid.UUID]struct{}
	done  chan struct{} // closed once committed or failed
	err   error
}

// flightStream returns the stream id as the last batch in flight that has
// it leaves it.
func flightStream(flight []*importBatch, id string) (meowmxtype.StreamInfo, bool) {
	for i := len(flight) - 1; i >= 0; i-- {
		if j, ok := flight[i].plan.Find(id); ok {
			return flight[i].plan.Stream(j), true
		}
	}
	return meowmxtype.StreamInfo{}, false
}

func (b *importBatch) finished() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// sharesUUID reports whether an event of evs has the UUID of an event of
// a batch in flight.
func sharesUUID(evs []*meowmxtype.RecordedEvent, flight []*importBatch) bool {
	for _, ev := range evs {
		if ev.UUID == (uuid.UUID{}) {
			continue
		}
		for _, b := range flight {
			if _, ok := b.uuids[ev.UUID]; ok {
				return true
			}
		}
	}
	return false
}

// startBatch begins a batch's transaction, takes its transaction id, plans
// it and moves the versions of its streams that no batch in flight writes
// (their rows locked FOR UPDATE first). Nothing in it waits for a batch in
// flight.
func (e *executor) startBatch(ctx context.Context, q *queries, evs []*meowmxtype.RecordedEvent, flight []*importBatch) (_ *importBatch, err error) {
	for _, ev := range evs {
		if err := q.checkID(ev.StreamID.ID); err != nil {
			return nil, err
		}
	}
	b := &importBatch{size: len(evs), done: make(chan struct{})}
	starter, ok := e.db.(interface {
		Begin(ctx context.Context) (pgx.Tx, error)
	})
	if !ok {
		return nil, fmt.Errorf("meowmxpgx: import: %T cannot begin a transaction", e.db)
	}
	if b.tx, err = starter.Begin(ctx); err != nil { // in a caller's transaction, a savepoint
		return nil, interpretError(err, onWrite)
	}
	defer func() {
		if err != nil {
			_ = b.tx.Rollback(context.WithoutCancel(ctx))
			err = importError(err, onWrite)
		}
	}()
	if err := b.tx.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&b.xid); err != nil {
		return nil, err
	}
	// Streams that a batch in flight writes stand as it leaves them; the
	// others are read and locked.
	b.plan = meowmxdriver.NewImportPlan(evs)
	inFlight := make([]bool, len(b.plan.IDs)) // by index in IDs: a batch in flight writes the stream
	var ids []string
	for i, id := range b.plan.IDs {
		if s, ok := flightStream(flight, id); ok {
			b.plan.SetStored(i, s)
			inFlight[i] = true
		} else {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		rows, _ := b.tx.Query(ctx, q.streamGets+` ORDER BY id FOR UPDATE`, ids)
		var si meowmxtype.StreamInfo
		if _, err := pgx.ForEachRow(rows, []any{&si.StreamID.ID, &si.StreamID.Type, &si.Version}, func() error {
			if i, ok := b.plan.Find(si.StreamID.ID); ok {
				b.plan.SetStored(i, si)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if err := b.plan.Check(); err != nil {
		return nil, err
	}
	var now []meowmxtype.StreamInfo
	for _, i := range b.plan.Moves {
		if inFlight[i] {
			b.later = append(b.later, b.plan.Stream(i))
		} else {
			now = append(now, b.plan.Stream(i))
		}
	}
	for _, ev := range b.plan.Events {
		if ev.UUID != (uuid.UUID{}) {
			if b.uuids == nil {
				b.uuids = make(map[uuid.UUID]struct{})
			}
			b.uuids[ev.UUID] = struct{}{}
		}
	}
	if err := moveStreams(ctx, b.tx, q, e.d.quoted, now, false); err != nil {
		return nil, err
	}
	return b, nil
}

// finish copies the batch's events and, once the batch before it has
// committed, moves the versions of the streams that batch wrote and
// commits; if that batch failed, it rolls back.
func (b *importBatch) finish(ctx context.Context, e *executor, q *queries, prev *importBatch) {
	defer close(b.done)
	st := onWrite
	err := func() error {
		if err := e.d.copyEvents(ctx, b.tx, q, b.xid, b.plan.Events); err != nil {
			return err
		}
		if prev != nil {
			<-prev.done
			if prev.err != nil {
				return errBatchBefore
			}
		}
		// Only now: the batch before may not have locked these rows
		// yet, and it would wait for this batch, which waits for it.
		if err := moveStreams(ctx, b.tx, q, e.d.quoted, b.later, true); err != nil {
			return err
		}
		st = onCommit
		if !e.pool {
			st = onRead // the caller's transaction commits
		}
		return b.tx.Commit(ctx)
	}()
	if err != nil {
		_ = b.tx.Rollback(context.WithoutCancel(ctx))
		b.err = importError(err, st)
	}
}

func importError(err error, st stage) error {
	switch {
	case errors.Is(err, meowmxdriver.ErrImportRefused), errors.Is(err, meowmxdriver.ErrInvalidInput), errors.Is(err, errBatchBefore):
		return err
	}
	return interpretError(err, st)
}

// moveStreams creates streams or moves their versions; stored: they all
// are (written by the batch before, committed), and a plain UPDATE moves
// them (a quarter cheaper than the upsert: 32 against 42 ms for 10 000).
func moveStreams(ctx context.Context, tx pgx.Tx, q *queries, schema string, streams []meowmxtype.StreamInfo, stored bool) error {
	if len(streams) == 0 {
		return nil
	}
	ids, types, versions := make([]string, len(streams)), make([]string, len(streams)), make([]int64, len(streams))
	for i, st := range streams {
		ids[i], types[i], versions[i] = st.StreamID.ID, st.StreamID.Type, st.Version
	}
	if stored {
		tag, err := tx.Exec(ctx, `UPDATE `+schema+`.es_aggregates AS a SET version = u.v, last_transaction_id = pg_current_xact_id()
			FROM unnest($1::text[], $2::bigint[]) AS u(i, v) WHERE a.id = u.i`+q.cast,
			ids, versions)
		if err == nil && tag.RowsAffected() != int64(len(streams)) {
			err = fmt.Errorf("meowmxpgx: import: %d of %d streams to move are stored", tag.RowsAffected(), len(streams))
		}
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.es_aggregates AS a (id, version, aggregate_type, last_transaction_id)
		SELECT i`+q.cast+`, v, t, pg_current_xact_id() FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(i, v, t)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, last_transaction_id = excluded.last_transaction_id`,
		ids, versions, types)
	return err
}

// copyEvents copies events into es_events with transaction id xid.
func (d *Driver) copyEvents(ctx context.Context, tx pgx.Tx, q *queries, xid uint64, evs []*meowmxtype.RecordedEvent) error {
	if len(evs) == 0 {
		return nil
	}
	i := 0
	// One row, refilled for each event (pgx encodes it before asking for
	// the next), of pointers where they do: less garbage per event.
	row := make([]any, len(importColumns))
	row[0] = xid
	_, err := tx.CopyFrom(ctx, pgx.Identifier{d.schema, "es_events"}, importColumns, pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(evs) {
			return nil, nil
		}
		ev := evs[i]
		i++
		var id, hash any = &ev.StreamID.ID, nil // hash: nil, the trigger computes it from the stored id
		switch q.idKind {
		case idText:
			hash = int64(meowmxtype.PartitionHash(ev.StreamID.ID)) // partitionHashSQL, for an id stored as given
		case idUUID:
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
		var u any
		if ev.UUID != (uuid.UUID{}) {
			u = pgtype.UUID{Bytes: ev.UUID, Valid: true}
		}
		at := ev.RecordedAt
		if at.IsZero() {
			at = time.Now()
		}
		row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9] =
			id, int32(ev.Version), &ev.Type, []byte(ev.Data), meta, u, at, &ev.StreamID.Type, hash
		return row, nil
	}))
	return err
}
