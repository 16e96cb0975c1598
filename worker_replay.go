package meowmx

import (
	"cmp"
	"context"
	"fmt"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// replay hands parked events marked for replay to the handler, in order,
// and returns how many it replayed. Each succeeds in a transaction that
// deletes its parked row (fenced: a row already gone rolls the transaction
// back); one that fails again stays parked with its new error. An event
// behind another parked event of its stream that stays parked is not
// replayed (unless PassParked); its replay mark is cleared.
func (w *worker[TTx]) replay(ctx context.Context) (int, error) {
	if len(w.blocked) == 0 {
		return 0, nil
	}
	parked, events, err := w.markedForReplay(ctx)
	if err != nil || events == nil {
		return 0, err
	}
	stuck := map[string]bool{} // streams with an event that stays parked
	n := 0
	for _, p := range parked {
		ev := events[p.Event.EventID]
		if !p.Replay || ev == nil || (stuck[p.AggregateID] && !w.c.PassParked) {
			stuck[p.AggregateID] = true
			if p.Replay {
				if err := w.unmark(ctx, p); err != nil {
					return n, err
				}
			}
			continue
		}
		ok, err := w.replayOne(ctx, ev, p)
		if err != nil {
			return n, err
		}
		if !ok {
			stuck[p.AggregateID] = true
			continue
		}
		n++
	}
	return n, w.loadBlocked(ctx)
}

// markedForReplay lists the subscription's parked events, and reads those
// marked for replay, by id; nil when none is marked.
func (w *worker[TTx]) markedForReplay(ctx context.Context) ([]*meowmxdriver.ParkedRow, map[int64]*RecordedEvent, error) {
	parked, err := w.ex.ParkedList(ctx, &meowmxdriver.ParkedListParams{Subscription: w.c.Name})
	if err != nil {
		return nil, nil, err
	}
	var ids []int64
	for _, p := range parked {
		if p.Replay {
			ids = append(ids, p.Event.EventID)
		}
	}
	if len(ids) == 0 {
		return parked, nil, nil
	}
	rows, err := w.ex.EventGet(ctx, &meowmxdriver.EventGetParams{IDs: ids})
	if err != nil {
		return nil, nil, err
	}
	events := make(map[int64]*RecordedEvent, len(rows))
	for _, r := range rows {
		events[r.Position.EventID] = r
	}
	return parked, events, nil
}

// unmark clears the replay mark of a parked event that waits behind an
// event of its stream that stays parked (or was deleted from the events).
//
// The replay marks cleared here and by replayOne are those this pass read
// (ParkedRow.Mark): a replay requested while the pass runs, of an event it
// has already handed over (or is handing over), stays requested for the
// next pass.
func (w *worker[TTx]) unmark(ctx context.Context, p *meowmxdriver.ParkedRow) error {
	ev := &RecordedEvent{Position: p.Event, StreamID: StreamID{ID: p.AggregateID}}
	r := w.parkedRow(ev, p.Error, 0)
	r.Mark = p.Mark
	return w.ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{r}})
}

// replayOne hands one parked event to the handler, MaxAttempts times at
// most, and tells whether it succeeded; when it did not, the event stays
// parked with the handler's last error.
func (w *worker[TTx]) replayOne(ctx context.Context, ev *RecordedEvent, p *meowmxdriver.ParkedRow) (ok bool, err error) {
	ctx, span := w.tel.startEventSpan(ctx, "replay", ev)
	var herr error
	defer func() {
		if recording(span) {
			span.SetAttributes(keyReplayed.Bool(ok))
		}
		endOutcome(span, cmp.Or(err, herr))
	}()
	backoff := w.c.RetryBackoff
	for attempt := 1; attempt <= max(w.c.MaxAttempts, 1); attempt++ {
		if attempt > 1 && !sleep(ctx, backoff) {
			return false, ctx.Err()
		}
		backoff = min(2*backoff, RetryBackoffMax)
		w.attempt = attempt
		if attempt > 1 {
			w.tel.retried(ctx)
		}
		herr, err = w.replayTx(ctx, ev, p)
		if err != nil || herr == nil {
			w.attempt = 0
			return err == nil, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	w.attempt = 0
	r := w.parkedRow(ev, herr.Error(), w.c.MaxAttempts)
	r.Mark = p.Mark
	return false, w.ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{r}})
}

// replayTx hands one parked event to the handler in a transaction that
// deletes its parked row, fenced, and commits. herr is the handler's
// error.
func (w *worker[TTx]) replayTx(ctx context.Context, ev *RecordedEvent, p *meowmxdriver.ParkedRow) (herr, err error) {
	etx, err := w.s.driver.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = etx.Rollback(context.WithoutCancel(ctx)) }()
	tx := w.s.driver.UnwrapTx(etx)
	hctx, h := w.tel.startHandler(ctx, []*RecordedEvent{ev}, w.attempt)
	if w.c.Handler != nil {
		herr = call(func() error { return w.c.Handler.HandleEvent(hctx, tx, ev) })
	} else {
		herr = call(func() error { return w.c.BatchHandler.HandleEvents(hctx, tx, []*RecordedEvent{ev}) })
	}
	w.tel.endHandler(ctx, h, herr)
	if herr != nil && etx.Broken() { // the connection's failure, not the handler's
		return nil, fmt.Errorf("meowmx: handler's connection broke: %w", herr)
	}
	if herr != nil {
		return herr, nil
	}
	ok, err := etx.ParkedDelete(ctx, &meowmxdriver.ParkedDeleteParams{Subscription: w.c.Name, Event: p.Event})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errFenced
	}
	if err := etx.Commit(ctx); err != nil {
		return nil, err
	}
	w.tel.handledN(ctx, 1)
	return nil, nil
}
