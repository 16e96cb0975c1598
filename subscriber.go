package meowmx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// RunSubscription runs a subscription: it hands the events its filter
// selects, in global order, to its handler, and advances its checkpoint in
// the handler's transaction. It blocks until ctx is cancelled, then returns
// nil; a transaction in progress then rolls back, handler's writes and
// checkpoint together.
//
// Many workers may run the same subscription, in one process or several:
// one owns it and the others stand by, taking it over within
// SubscriptionConfig.LockInterval when the owner stops or dies (on
// PostgreSQL, a session advisory lock held on a connection of its own). The
// checkpoint update is fenced on the position the owner read, so even two
// workers that overlap for a moment never both commit the same events.
//
// It returns a *HandlerError when an event failed under FailureStop, a
// *CheckpointAheadError when the checkpoint is ahead of the database, an
// error matching ErrSubscriptionNotFound when the subscription is deleted
// while it runs, one matching ErrNotMigrated when the tables are missing,
// and one matching ErrInvalidArgument for a bad config.
// Database errors are logged and retried with back-off. A handler's panic
// is recovered and treated as its error.
func (s *Store[TTx]) RunSubscription(ctx context.Context, config *SubscriptionConfig[TTx]) error {
	c, err := config.withDefaults()
	if err != nil {
		return err
	}
	w := &worker[TTx]{s: s, c: c, ex: s.driver.Executor(),
		log: s.config.Logger.With("subscription", c.Name)}
	return w.run(ctx)
}

type worker[TTx any] struct {
	s   *Store[TTx]
	c   *SubscriptionConfig[TTx]
	ex  meowmxdriver.Executor
	log *slog.Logger

	pos       Position        // the checkpoint as this worker last read or wrote it
	blocked   map[string]bool // aggregate ids with parked events
	lastCheck time.Time       // of the lock
	next      *prefetch       // the page after the one being handled
	// How long the last page took to read, and to handle: they decide
	// whether the next page is read while this one is handled.
	readTook, handleTook time.Duration
	warned               map[string]time.Time
	lastWarn             time.Time
}

// stopError ends RunSubscription with err.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }

// recheckMax caps the back-off of the re-checks that follow a wake-up for
// a transaction the horizon has not passed yet: they go on, at this pace at
// the slowest, until it has.
const recheckMax = 100 * time.Millisecond

// errFenced: the checkpoint was not where this worker thought it was.
var errFenced = errors.New("meowmx: checkpoint moved by another session")

func (w *worker[TTx]) run(ctx context.Context) error {
	lock := w.lock()
	defer func() { _ = lock.Close(context.WithoutCancel(ctx)) }()
	backoff := w.c.LockInterval
	standby := false
	for ctx.Err() == nil {
		ok, err := lock.TryLock(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			w.log.WarnContext(ctx, "meowmx: subscription lock", "err", err, "retry_in", backoff)
		case !ok:
			if !standby {
				w.log.InfoContext(ctx, "meowmx: subscription owned by another worker; standing by")
				standby = true
			}
		default:
			standby = false
			w.log.InfoContext(ctx, "meowmx: subscription owned by this worker")
			started := time.Now()
			err = w.own(ctx, lock)
			_ = lock.Close(context.WithoutCancel(ctx))
			var stop *stopError
			switch {
			case errors.As(err, &stop):
				w.log.ErrorContext(ctx, "meowmx: subscription stopped", "err", stop.err)
				return stop.err
			case ctx.Err() != nil:
				w.log.InfoContext(ctx, "meowmx: subscription stopped: context done")
				return nil
			case errors.Is(err, ErrNotMigrated):
				return fmt.Errorf("meowmx: subscription %q: %w", w.c.Name, err)
			}
			if time.Since(started) > 10*MaxPollIntervalDefault {
				backoff = w.c.LockInterval // it had been working
			}
			w.log.WarnContext(ctx, "meowmx: subscription worker lost ownership or failed; retrying", "err", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, MaxPollIntervalDefault)
			continue
		}
		if !sleep(ctx, w.c.LockInterval) {
			return nil
		}
	}
	return nil
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (w *worker[TTx]) lock() meowmxdriver.SubscriptionLock {
	if l := w.s.caps.SubscriptionLocker; l != nil {
		return l.SubscriptionLock(w.c.Name)
	}
	return w.s.locks.lock(w.c.Name)
}

// own processes the subscription while this worker holds its lock.
func (w *worker[TTx]) own(ctx context.Context, lock meowmxdriver.SubscriptionLock) error {
	create := &meowmxdriver.SubscriptionCreateParams{
		Name: w.c.Name, At: w.c.StartFrom.After, AtHead: w.c.StartFrom.End,
		AggregateTypes: w.c.AggregateTypes, EventTypes: w.c.EventTypes,
	}
	if _, err := w.ex.SubscriptionCreate(ctx, create); err != nil {
		return err
	}
	if _, err := w.ex.SubscriptionSet(ctx, &meowmxdriver.SubscriptionSetParams{Name: w.c.Name, SetFilter: true,
		AggregateTypes: w.c.AggregateTypes, EventTypes: w.c.EventTypes}); err != nil {
		return err
	}
	if err := w.reload(ctx); err != nil {
		return err
	}
	sub := w.s.hub.Subscribe()
	defer w.s.hub.Unsubscribe(sub)
	defer w.dropPrefetch()
	w.lastCheck = time.Now()
	pollDelay, recheck := w.c.PollInterval, time.Duration(0)
	lastReload := time.Now()
	var want uint64 // the highest transaction announced
	idle := true    // the last page was not full
	var err error
	for {
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(w.lastCheck) >= w.c.LockInterval {
			if err := lock.Check(ctx); err != nil {
				return err
			}
			w.lastCheck = time.Now()
		}
		// Near the head, read the horizon before the page: when the page
		// then comes back empty, everything below that horizon has been
		// read, whatever the horizon did meanwhile.
		var h *meowmxdriver.Horizon
		if idle {
			if h, err = w.ex.HorizonGet(ctx); err != nil {
				return err
			}
		}
		n, full, err := w.step(ctx)
		if errors.Is(err, errFenced) {
			w.log.InfoContext(ctx, "meowmx: checkpoint moved by another session; continuing from there")
			err = w.reload(ctx)
		}
		if err != nil {
			return err
		}
		idle = !full
		if n > 0 {
			pollDelay, recheck = w.c.PollInterval, 0
			continue
		}
		if h == nil {
			continue // look again, horizon first
		}
		// Caught up with the events below h.
		if h.Xmax != 0 && w.pos.TransactionID >= h.Xmax {
			// Confirm with a horizon read after the position: another
			// worker may have moved the checkpoint (a reload) since h.
			if h, err = w.ex.HorizonGet(ctx); err != nil {
				return err
			}
			if w.pos.TransactionID >= h.Xmax {
				return &stopError{&CheckpointAheadError{Subscription: w.c.Name, Checkpoint: w.pos, NextTransactionID: h.Xmax}}
			}
		}
		w.warnHorizon(ctx)
		if time.Since(lastReload) >= w.c.PollInterval {
			if err := w.reloadIfMoved(ctx); err != nil {
				return err
			}
			lastReload = time.Now()
		}
		// Woken for a transaction that the horizon has not passed yet: an
		// older transaction is still open. Look again soon rather than at
		// the next poll. A wake-up that names no transaction stands for
		// every transaction begun so far.
		want = max(want, sub.MaxTx())
		if sub.TakeUnknown() && h.Xmax > 0 {
			want = max(want, h.Xmax-1)
		}
		if h.Xmin != 0 && want >= h.Xmin && want > w.pos.TransactionID {
			recheck = min(max(time.Millisecond, 2*recheck), w.c.PollInterval, recheckMax)
			if !sleep(ctx, recheck) {
				return nil
			}
			continue
		}
		t := time.NewTimer(pollDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-sub.C:
			pollDelay, recheck = w.c.PollInterval, 0
		case <-t.C:
			pollDelay = min(2*pollDelay, w.c.MaxPollInterval)
		}
		t.Stop()
	}
}

// checkpoint reads the stored checkpoint; a deleted subscription stops the
// worker.
func (w *worker[TTx]) checkpoint(ctx context.Context) (Position, error) {
	row, err := w.ex.SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: w.c.Name})
	if errors.Is(err, meowmxdriver.ErrNotFound) {
		return Position{}, &stopError{fmt.Errorf("%w: %q was deleted", ErrSubscriptionNotFound, w.c.Name)}
	}
	if err != nil {
		return Position{}, err
	}
	return row.Position, nil
}

// reload reads the checkpoint and the parked streams.
func (w *worker[TTx]) reload(ctx context.Context) error {
	p, err := w.checkpoint(ctx)
	if err != nil {
		return err
	}
	w.pos = p
	return w.loadBlocked(ctx)
}

func (w *worker[TTx]) loadBlocked(ctx context.Context) error {
	parked, err := w.ex.ParkedList(ctx, &meowmxdriver.ParkedListParams{Subscription: w.c.Name})
	if err != nil {
		return err
	}
	w.blocked = map[string]bool{}
	for _, p := range parked {
		w.blocked[p.AggregateID] = true
	}
	return nil
}

// reloadIfMoved adopts a checkpoint moved by ResetSubscription (or by
// another worker) while this one was idle.
func (w *worker[TTx]) reloadIfMoved(ctx context.Context) error {
	p, err := w.checkpoint(ctx)
	if err != nil {
		return err
	}
	if p != w.pos {
		w.log.InfoContext(ctx, "meowmx: checkpoint moved by another session", "from", w.pos, "to", p)
		return w.reload(ctx)
	}
	return nil
}

// step replays parked events marked for replay, then reads and handles one
// page. It returns how many events it handled or parked, and whether the
// page was full.
func (w *worker[TTx]) step(ctx context.Context) (int, bool, error) {
	replayed, err := w.replay(ctx)
	if err != nil {
		return 0, false, err
	}
	var rows []*RecordedEvent
	if w.next != nil && w.next.after == w.pos {
		r := <-w.next.done
		rows, err, w.readTook = r.rows, r.err, r.took
		w.next = nil
	} else {
		w.dropPrefetch()
		start := time.Now()
		rows, err = w.read(ctx, w.pos)
		w.readTook = time.Since(start)
	}
	if err != nil {
		return 0, false, err
	}
	full := len(rows) == w.c.BatchSize
	if full && w.handleTook >= w.readTook/2 {
		// Handling takes about as long as reading: read the next page
		// meanwhile. When handling is quick there is little to overlap,
		// and two goroutines and connections at work cost more than they
		// save (measured on two cores shared with the database).
		p := &prefetch{after: rows[len(rows)-1].Position, done: make(chan pageResult, 1)}
		go func() {
			start := time.Now()
			rows, err := w.read(ctx, p.after)
			p.done <- pageResult{rows, err, time.Since(start)}
		}()
		w.next = p
	}
	start := time.Now()
	page := rows
	for len(page) > 0 {
		n := min(w.c.CheckpointEvery, len(page))
		if err := w.handleChunk(ctx, page[:n]); err != nil {
			return 0, false, err
		}
		page = page[n:]
	}
	w.handleTook = time.Since(start)
	return replayed + len(rows), full, nil
}

type pageResult struct {
	rows []*RecordedEvent
	err  error
	took time.Duration
}

// prefetch is a page being read after a position.
type prefetch struct {
	after Position
	done  chan pageResult
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
	return w.ex.EventReadAll(ctx, &meowmxdriver.EventReadAllParams{
		After: after, AggregateTypes: w.c.AggregateTypes, EventTypes: w.c.EventTypes, Limit: w.c.BatchSize,
	})
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
	backoff := w.c.RetryBackoff
	for attempt := 2; attempt <= w.c.MaxAttempts; attempt++ {
		w.log.WarnContext(ctx, "meowmx: handler failed; retrying", "event", ev.Position, "stream", ev.StreamID.String(),
			"attempt", attempt-1, "err", herr, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, RetryBackoffMax)
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
func (w *worker[TTx]) park(ctx context.Context, ev *RecordedEvent, herr error, attempts int) error {
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

func (w *worker[TTx]) parkedRow(ev *RecordedEvent, msg string, attempts int) *meowmxdriver.ParkedRow {
	return &meowmxdriver.ParkedRow{Subscription: w.c.Name, Event: ev.Position,
		AggregateID: ev.StreamID.ID, Error: msg, Attempts: attempts}
}

// commit advances the checkpoint to `to` in etx, fenced on the worker's
// position, and commits.
func (w *worker[TTx]) commit(ctx context.Context, etx meowmxdriver.ExecutorTx, to Position, parked []string) error {
	ok, err := etx.SubscriptionCommit(ctx, &meowmxdriver.SubscriptionCommitParams{
		Name: w.c.Name, From: w.pos, To: to, Async: !w.c.SynchronousCommit})
	if err != nil {
		return err
	}
	if !ok {
		return errFenced
	}
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
	tx := w.s.driver.UnwrapTx(etx)
	var behind []*meowmxdriver.ParkedRow
	var parked []string
	handle := evs
	if len(w.blocked) > 0 && !w.c.PassParked {
		handle = make([]*RecordedEvent, 0, len(evs))
		for _, ev := range evs {
			if w.blocked[ev.StreamID.ID] {
				behind = append(behind, w.parkedRow(ev, "waits behind a parked event of its stream", 0))
				parked = append(parked, ev.StreamID.ID)
				continue
			}
			handle = append(handle, ev)
		}
	}
	if w.c.Handler != nil {
		for _, ev := range handle {
			if herr := call(func() error { return w.c.Handler.HandleEvent(ctx, tx, ev) }); herr != nil {
				if etx.Broken() { // the connection's failure, not the handler's: no attempt counted
					return 0, nil, fmt.Errorf("meowmx: handler's connection broke: %w", herr)
				}
				for i := range evs {
					if evs[i] == ev {
						return i, herr, nil
					}
				}
			}
		}
	} else if len(handle) > 0 {
		if herr := call(func() error { return w.c.BatchHandler.HandleEvents(ctx, tx, handle) }); herr != nil {
			if etx.Broken() {
				return 0, nil, fmt.Errorf("meowmx: handler's connection broke: %w", herr)
			}
			return -1, herr, nil
		}
	}
	if len(behind) > 0 {
		if err := etx.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: behind}); err != nil {
			return 0, nil, err
		}
	}
	return 0, nil, w.commit(ctx, etx, evs[len(evs)-1].Position, parked)
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

// replay hands parked events marked for replay to the handler, in order.
// Each succeeds in a transaction that deletes its parked row (fenced: a
// row already gone rolls the transaction back). An event behind another
// parked event of its stream that stays parked is not replayed (unless
// PassParked); its replay mark is cleared.
func (w *worker[TTx]) replay(ctx context.Context) (int, error) {
	if len(w.blocked) == 0 {
		return 0, nil
	}
	all, err := w.ex.ParkedList(ctx, &meowmxdriver.ParkedListParams{Subscription: w.c.Name})
	if err != nil {
		return 0, err
	}
	var ids []int64
	for _, p := range all {
		if p.Replay {
			ids = append(ids, p.Event.EventID)
		}
	}
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := w.ex.EventGet(ctx, &meowmxdriver.EventGetParams{IDs: ids})
	if err != nil {
		return 0, err
	}
	byID := make(map[int64]*RecordedEvent, len(rows))
	for _, r := range rows {
		byID[r.Position.EventID] = r
	}
	stuck := map[string]bool{} // streams with an event that stays parked
	n := 0
	for _, p := range all {
		ev := byID[p.Event.EventID]
		if !p.Replay || ev == nil || (stuck[p.AggregateID] && !w.c.PassParked) {
			stuck[p.AggregateID] = true
			if p.Replay { // clear the mark: it waits behind an event that stays parked
				if err := w.ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
					w.parkedRow(&RecordedEvent{Position: p.Event, StreamID: StreamID{ID: p.AggregateID}}, p.Error, 0)}}); err != nil {
					return n, err
				}
			}
			continue
		}
		herr, err := w.replayOne(ctx, ev, p)
		if err != nil {
			return n, err
		}
		if herr != nil {
			stuck[p.AggregateID] = true
			if err := w.ex.ParkedInsert(ctx, &meowmxdriver.ParkedInsertParams{Rows: []*meowmxdriver.ParkedRow{
				w.parkedRow(ev, herr.Error(), w.c.MaxAttempts)}}); err != nil {
				return n, err
			}
			continue
		}
		n++
	}
	return n, w.loadBlocked(ctx)
}

// replayOne hands one parked event to the handler, with retries.
func (w *worker[TTx]) replayOne(ctx context.Context, ev *RecordedEvent, p *meowmxdriver.ParkedRow) (herr, err error) {
	backoff := w.c.RetryBackoff
	for attempt := 1; attempt <= max(w.c.MaxAttempts, 1); attempt++ {
		if attempt > 1 && !sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, RetryBackoffMax)
		herr, err = w.replayTx(ctx, ev, p)
		if err != nil || herr == nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return herr, nil
}

func (w *worker[TTx]) replayTx(ctx context.Context, ev *RecordedEvent, p *meowmxdriver.ParkedRow) (herr, err error) {
	etx, err := w.s.driver.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = etx.Rollback(context.WithoutCancel(ctx)) }()
	tx := w.s.driver.UnwrapTx(etx)
	if w.c.Handler != nil {
		herr = call(func() error { return w.c.Handler.HandleEvent(ctx, tx, ev) })
	} else {
		herr = call(func() error { return w.c.BatchHandler.HandleEvents(ctx, tx, []*RecordedEvent{ev}) })
	}
	if herr != nil && etx.Broken() {
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
	return nil, etx.Commit(ctx)
}

// warnHorizon logs the sessions that have held the commit horizon back for
// longer than HorizonWarnAfter, at most once per HorizonWarnAfter each.
func (w *worker[TTx]) warnHorizon(ctx context.Context) {
	after := w.c.HorizonWarnAfter
	if after < 0 || time.Since(w.lastWarn) < after/4 {
		return
	}
	w.lastWarn = time.Now()
	holders, err := w.ex.HorizonHolders(ctx, &meowmxdriver.HorizonHoldersParams{OlderThan: after, Limit: 5})
	if err != nil || len(holders) == 0 {
		return
	}
	if w.warned == nil {
		w.warned = map[string]time.Time{}
	}
	for _, h := range holders {
		key := fmt.Sprint(h.PID, h.TransactionID)
		if t, ok := w.warned[key]; ok && time.Since(t) < after {
			continue
		}
		w.warned[key] = time.Now()
		w.log.WarnContext(ctx, "meowmx: a transaction holds the commit horizon back: events committed after it started wait until it ends",
			"pid", h.PID, "state", h.State, "application", h.Application, "transaction_start", h.TransactionStart,
			"age", h.Age, "query", h.Query)
	}
}

// localLocks are subscription locks within one process, for drivers
// without locks of their own.
type localLocks struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *localLocks) lock(name string) meowmxdriver.SubscriptionLock {
	return &localLock{l: l, name: name}
}

type localLock struct {
	l    *localLocks
	name string
	held bool
}

func (k *localLock) TryLock(context.Context) (bool, error) {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	if k.l.held == nil {
		k.l.held = map[string]bool{}
	}
	if k.l.held[k.name] && !k.held {
		return false, nil
	}
	k.l.held[k.name], k.held = true, true
	return true, nil
}

func (k *localLock) Check(context.Context) error { return nil }

func (k *localLock) Close(context.Context) error {
	k.l.mu.Lock()
	defer k.l.mu.Unlock()
	if k.held {
		delete(k.l.held, k.name)
		k.held = false
	}
	return nil
}
