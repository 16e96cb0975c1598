package meowmx

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// handleNext replays the parked events marked for replay, then reads the
// page after the checkpoint and hands it to the handler, CheckpointEvery
// events per transaction. It returns how many events it handled or
// parked, and whether the page was full.
func (w *worker[TTx]) handleNext(ctx context.Context) (int, bool, error) {
	replayed, err := w.replay(ctx)
	if err != nil {
		return 0, false, err
	}
	rows, err := w.readPage(ctx)
	if err != nil {
		return 0, false, err
	}
	full := len(rows) == w.c.BatchSize
	if full && w.handleTook >= w.readTook/2 {
		// Handling takes about as long as reading: read the next page
		// meanwhile. When handling is quick there is little to overlap,
		// and two goroutines and connections at work cost more than they
		// save (docs/BENCHMARKS.md, catch-up).
		w.startPrefetch(ctx, rows[len(rows)-1].Position)
	}
	start := time.Now()
	for page := rows; len(page) > 0; {
		n := min(w.c.CheckpointEvery, len(page))
		if err := w.handleChunk(ctx, page[:n]); err != nil {
			return 0, false, err
		}
		page = page[n:]
	}
	w.handleTook = time.Since(start)
	return replayed + len(rows), full, nil
}

// readPage returns the page after the checkpoint: the one prefetched,
// when it was read after the checkpoint, else one read now.
func (w *worker[TTx]) readPage(ctx context.Context) ([]*RecordedEvent, error) {
	if w.next != nil && w.next.after == w.pos {
		r := <-w.next.done
		w.next, w.readTook = nil, r.took
		return r.rows, r.err
	}
	w.dropPrefetch()
	start := time.Now()
	rows, err := w.read(ctx, w.pos)
	w.readTook = time.Since(start)
	return rows, err
}

// prefetch is a page being read after a position.
type prefetch struct {
	after Position
	done  chan pageResult
}

// pageResult is a page read by a prefetch.
type pageResult struct {
	rows []*RecordedEvent
	err  error
	took time.Duration
}

// startPrefetch starts reading the page after a position, for readPage.
func (w *worker[TTx]) startPrefetch(ctx context.Context, after Position) {
	p := &prefetch{after: after, done: make(chan pageResult, 1)}
	go func() {
		start := time.Now()
		rows, err := w.read(ctx, p.after)
		p.done <- pageResult{rows, err, time.Since(start)}
	}()
	w.next = p
}

// dropPrefetch waits for a page being read and forgets it.
func (w *worker[TTx]) dropPrefetch() {
	if w.next != nil {
		<-w.next.done
		w.next = nil
	}
}

// read reads the page after a position.
func (w *worker[TTx]) read(ctx context.Context, after Position) ([]*RecordedEvent, error) {
	ctx, span := w.tel.startRead(ctx, after)
	rows, err := w.ex.EventReadAll(ctx, &meowmxdriver.EventReadAllParams{
		After: after, AggregateTypes: w.c.AggregateTypes, EventTypes: w.c.EventTypes, Limit: w.c.BatchSize,
		Partition: w.partition, Partitions: w.partitions,
	})
	endRead(span, len(rows), err)
	return rows, err
}

// handleChunk handles events in one transaction. When the handler fails on
// one, the events before it are committed, the failing one is retried on
// its own (then parked, or the subscription stops), and the rest follow.
func (w *worker[TTx]) handleChunk(ctx context.Context, evs []*RecordedEvent) error {
	if len(evs) == 0 {
		return nil
	}
	failed, herr, err := w.runTx(ctx, evs)
	switch {
	case err != nil:
		return err
	case herr == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case len(evs) == 1:
		return w.retry(ctx, evs[0], herr)
	case failed < 0: // a batch handler: find the failing events one by one
		for i := range evs {
			if err := w.handleChunk(ctx, evs[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := w.handleChunk(ctx, evs[:failed]); err != nil {
		return err
	}
	if err := w.retry(ctx, evs[failed], herr); err != nil {
		return err
	}
	return w.handleChunk(ctx, evs[failed+1:])
}

// retry hands one event to the handler until it succeeds or has failed
// MaxAttempts times (counting the attempt that already failed with herr),
// then applies the failure policy.
func (w *worker[TTx]) retry(ctx context.Context, ev *RecordedEvent, herr error) error {
	defer func() { w.attempt = 0 }()
	backoff := w.c.RetryBackoff
	for attempt := 2; attempt <= w.c.MaxAttempts; attempt++ {
		w.log.WarnContext(ctx, "meowmx: handler failed; retrying", "event", ev.Position, "stream", ev.StreamID.String(),
			"attempt", attempt-1, "err", herr, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, RetryBackoffMax)
		w.attempt = attempt
		w.tel.retried(ctx)
		var err error
		if _, herr, err = w.runTx(ctx, []*RecordedEvent{ev}); err != nil || herr == nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	attempts := max(w.c.MaxAttempts, 1)
	if w.c.OnFailure == FailurePark {
		w.log.ErrorContext(ctx, "meowmx: handler failed; event parked", "event", ev.Position, "stream", ev.StreamID.String(),
			"attempts", attempts, "err", herr)
		return w.park(ctx, ev, herr, attempts)
	}
	return &stopError{&HandlerError{Subscription: w.c.Name, Position: ev.Position, StreamID: ev.StreamID,
		Version: ev.Version, Attempts: attempts, Err: herr}}
}

// park parks one event and advances the checkpoint past it.
func (w *worker[TTx]) park(ctx context.Context, ev *RecordedEvent, herr error, attempts int) (err error) {
	ctx, span := w.tel.startEventSpan(ctx, "park", ev, keyAttempt.Int(attempts))
	defer func() {
		if err == nil {
			w.tel.parkedN(ctx, 1)
		}
		endOutcome(span, err)
	}()
	etx, err := w.s.driver.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = etx.Rollback(context.WithoutCancel(ctx)) }()
	if err := etx.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
		w.parkedRow(ev, herr.Error(), attempts)}}); err != nil {
		return err
	}
	return w.commit(ctx, etx, ev.Position, []string{ev.StreamID.ID})
}

// parkedRow is the row that parks ev with an error message.
func (w *worker[TTx]) parkedRow(ev *RecordedEvent, msg string, attempts int) *meowmxdriver.ParkedRow {
	return &meowmxdriver.ParkedRow{Subscription: w.c.Name, Event: ev.Position,
		AggregateID: ev.StreamID.ID, Error: msg, Attempts: attempts}
}

// commit advances the checkpoint to `to` in etx, fenced on the worker's
// position, and commits. The streams of parked, whose events etx parked,
// are blocked from then on.
func (w *worker[TTx]) commit(ctx context.Context, etx meowmxdriver.ExecutorTx, to Position, parked []string) error {
	ok, err := etx.SubscriptionCommit(ctx, &meowmxdriver.SubscriptionCommitParams{
		Name: w.c.Name, From: w.pos, To: to, Async: !w.c.SynchronousCommit,
		Owner: w.lease.owner.ID, TTL: w.c.LeaseTimeout})
	if err != nil {
		return err
	}
	if !ok {
		return errFenced
	}
	w.lease.renewed = time.Now() // the commit renewed it
	w.pos = to
	for _, id := range parked {
		w.blocked[id] = true
	}
	return nil
}

// runTx hands evs to the handler in one transaction and commits it with the
// checkpoint after the last. Events of streams with a parked event are
// parked behind it instead, unless PassParked. On a handler error it rolls
// back and returns the index of the failing event (-1: unknown, batch
// handler) and the error; err is any other failure.
func (w *worker[TTx]) runTx(ctx context.Context, evs []*RecordedEvent) (failed int, herr, err error) {
	etx, err := w.s.driver.Begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = etx.Rollback(context.WithoutCancel(ctx)) }()
	handle, behind := w.splitBlocked(evs)
	if failed, herr := w.handOver(ctx, w.s.driver.UnwrapTx(etx), evs, handle); herr != nil {
		if etx.Broken() { // the connection's failure, not the handler's: no attempt counted
			return 0, nil, fmt.Errorf("meowmx: handler's connection broke: %w", herr)
		}
		return failed, herr, nil
	}
	parked := make([]string, len(behind))
	for i, r := range behind {
		parked[i] = r.AggregateID
	}
	if len(behind) > 0 {
		if err := etx.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: behind}); err != nil {
			return 0, nil, err
		}
	}
	if err := w.commit(ctx, etx, evs[len(evs)-1].Position, parked); err != nil {
		return 0, nil, err
	}
	w.tel.handledN(ctx, len(handle))
	w.tel.parkedN(ctx, len(behind))
	return 0, nil, nil
}

// splitBlocked splits evs into the events to hand to the handler and the
// rows that park the others behind a parked event of their stream: all go
// to the handler when PassParked.
func (w *worker[TTx]) splitBlocked(evs []*RecordedEvent) (handle []*RecordedEvent, behind []*meowmxdriver.ParkedRow) {
	if len(w.blocked) == 0 || w.c.PassParked {
		return evs, nil
	}
	handle = make([]*RecordedEvent, 0, len(evs))
	for _, ev := range evs {
		if w.blocked[ev.StreamID.ID] {
			behind = append(behind, w.parkedRow(ev, "waits behind a parked event of its stream", 0))
			continue
		}
		handle = append(handle, ev)
	}
	return handle, behind
}

// handOver hands the events of evs in handle to the handler, in tx. When
// it fails, it returns the index in evs of the event it failed on (-1:
// unknown, a batch handler) and its error.
func (w *worker[TTx]) handOver(ctx context.Context, tx TTx, evs, handle []*RecordedEvent) (int, error) {
	if w.c.Handler == nil {
		if len(handle) == 0 {
			return 0, nil
		}
		hctx, h := w.tel.startHandler(ctx, handle, w.attempt)
		herr := call(func() error { return w.c.BatchHandler.HandleEvents(hctx, tx, handle) })
		w.tel.endHandler(ctx, h, herr)
		return -1, herr
	}
	for i, ev := range handle {
		hctx, h := w.tel.startHandler(ctx, handle[i:i+1], w.attempt)
		herr := call(func() error { return w.c.Handler.HandleEvent(hctx, tx, ev) })
		w.tel.endHandler(ctx, h, herr)
		if herr != nil {
			for i := range evs {
				if evs[i] == ev {
					return i, herr
				}
			}
		}
	}
	return 0, nil
}

// call runs a handler, turning a panic into a *PanicError.
func call(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f()
}
