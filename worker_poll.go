package meowmx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meowmx/meowmx/internal/notifier"
	"github.com/meowmx/meowmx/meowmxdriver"
)

// recheckMax caps the back-off of the re-checks that follow a wake-up for
// a transaction the horizon has not passed yet: they go on, at this pace at
// the slowest, until it has.
const recheckMax = 100 * time.Millisecond

// ownership is what own's loop decides its next step on, for as long as
// the worker holds the lease.
type ownership struct {
	sub *notifier.Sub // wake-ups: events appended, a checkpoint moved

	reloaded time.Time // when the stored checkpoint was last compared with the worker's
	// nearHead: the last page was not full, so the next may be the last
	// for now: read the horizon before it.
	nearHead bool
	// pollDelay is the next wait for a notification: PollInterval after
	// events, doubling up to MaxPollInterval while none come.
	pollDelay time.Duration
	// recheck is the last wait for a transaction above the horizon (0: none
	// since the last events).
	recheck time.Duration
	// announced is the highest transaction id that wake-ups announced.
	announced announced
	// caughtUp: the last page read after a horizon was empty; the next
	// renewal of the lease records progress.
	caughtUp bool
}

// own runs the subscription while this worker holds its lock (see worker):
// it reads and handles pages until it has caught up, then waits for more.
// It returns nil when ctx ends, a *stopError to end RunSubscription, and
// any other error (the lock lost, a statement failed) to release the lock
// and try again, unless it matches ErrNotMigrated.
func (w *worker[TTx]) own(ctx context.Context) error {
	if err := w.start(ctx); err != nil {
		return err
	}
	w.recovered(ctx)
	sub := w.s.hub.Subscribe()
	defer w.s.hub.Unsubscribe(sub)
	defer w.dropPrefetch()
	now := time.Now()
	o := &ownership{sub: sub, reloaded: now, nearHead: true, pollDelay: w.c.PollInterval}
	for ctx.Err() == nil {
		if w.drained() {
			return errDrained
		}
		if err := w.checkLock(ctx, o.caughtUp); err != nil {
			return err
		}
		h, err := w.horizonFirst(ctx, o)
		if err != nil {
			return err
		}
		n, err := w.nextPage(ctx, o)
		switch {
		case err != nil:
			return err
		case n > 0:
			o.pollDelay, o.recheck, o.caughtUp = w.c.PollInterval, 0, false
			continue
		case h == nil:
			continue // an empty page after a full one: read again, horizon first
		}
		if h, err = w.caughtUp(ctx, o, h); err != nil {
			return err
		}
		if !w.wait(ctx, o, h) {
			return nil
		}
	}
	return nil
}

// start reads what an owner starts from, besides the checkpoint that
// taking the lease read: the first time, the subscription gets the
// configured filter (ensure); the streams with a parked event.
func (w *worker[TTx]) start(ctx context.Context) error {
	if !w.ensured {
		if err := w.ensure(ctx); err != nil {
			return err
		}
	}
	return w.loadBlocked(ctx)
}

// ensure creates the subscription, or stores its filter, and reads its
// checkpoint: once per RunSubscription.
func (w *worker[TTx]) ensure(ctx context.Context) error {
	row, err := ensureSubscription(ctx, w.ex, w.c)
	if err != nil {
		return err
	}
	w.pos, w.ensured = row.Position, true
	return nil
}

// groupPartitions is how many partitions a config's subscription has: 0
// when it is not a consumer group.
func groupPartitions(partitions int) int {
	if partitions < 2 {
		return 0
	}
	return partitions
}

// ensureSubscription creates c's subscription (a consumer group with its
// partitions, when c.Partitions), or stores its filter, and returns its
// row. It refuses a subscription whose partitions differ from c's, and a
// consumer group's partition, with a *stopError.
func ensureSubscription[TTx any](ctx context.Context, ex meowmxdriver.Executor, c *SubscriptionConfig[TTx]) (*SubscriptionInfo, error) {
	row, err := ex.SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{
		Name: c.Name, At: c.StartFrom.After, AtHead: c.StartFrom.End,
		AggregateTypes: c.AggregateTypes, EventTypes: c.EventTypes, Partitions: c.Partitions,
	})
	switch {
	case err != nil:
		return nil, err
	case row.Group != "":
		return nil, &stopError{fmt.Errorf("%w: %q is partition %d of consumer group %q: run the group",
			ErrPartitionsChanged, c.Name, row.Partition, row.Group)}
	case row.Partitions != groupPartitions(c.Partitions):
		return nil, &stopError{fmt.Errorf("%w: %q has %d partitions, not %d", ErrPartitionsChanged, c.Name, row.Partitions, c.Partitions)}
	}
	return row, nil
}

// checkLock renews the lease every LockInterval: an owner that stops
// renewing (hung, frozen, cut off) loses it LeaseTimeout later.
// progress records that the worker is caught up.
func (w *worker[TTx]) checkLock(ctx context.Context, progress bool) error {
	if time.Since(w.lease.renewed) < w.c.LockInterval {
		return nil
	}
	return w.lease.renew(ctx, progress)
}

// horizonFirst reads the horizon before a page near the head (nil
// otherwise): when the page then comes back empty, everything below that
// horizon has been read, whatever the horizon did meanwhile.
func (w *worker[TTx]) horizonFirst(ctx context.Context, o *ownership) (*meowmxdriver.Horizon, error) {
	if !o.nearHead {
		return nil, nil
	}
	return w.ex.HorizonGet(ctx)
}

// nextPage replays, reads and handles the next page (see handleNext) and
// returns how many events it handled or parked. After a fenced commit it
// reloads the checkpoint, and returns 0.
func (w *worker[TTx]) nextPage(ctx context.Context, o *ownership) (int, error) {
	n, full, err := w.handleNext(ctx)
	if errors.Is(err, errFenced) {
		// The checkpoint moved (ResetSubscription), or the lease went to
		// another worker.
		if err = w.lease.renew(ctx, false); err == nil {
			w.log.InfoContext(ctx, "meowmx: checkpoint moved by another session; continuing from there")
			err = w.reload(ctx)
		}
	}
	if err != nil {
		return 0, err
	}
	o.nearHead = !full
	return n, nil
}

// caughtUp is what the worker does each time it has handled every event
// below h: it stops on a checkpoint ahead of the database, warns of the
// sessions that hold the horizon back, and every PollInterval adopts a
// checkpoint moved by another session. It returns the latest horizon.
func (w *worker[TTx]) caughtUp(ctx context.Context, o *ownership, h *meowmxdriver.Horizon) (*meowmxdriver.Horizon, error) {
	h, err := w.checkAhead(ctx, h)
	if err != nil {
		return nil, err
	}
	w.warnHorizon(ctx)
	o.caughtUp = true
	if time.Since(o.reloaded) >= w.c.PollInterval {
		if err := w.reloadIfMoved(ctx); err != nil {
			return nil, err
		}
		o.reloaded = time.Now()
	}
	return h, nil
}

// wait waits, caught up with the events below h, until there may be more:
// soon when a transaction announced is above the horizon, else until a
// notification or the poll back-off's next delay. It returns false when
// ctx ended.
func (w *worker[TTx]) wait(ctx context.Context, o *ownership, h *meowmxdriver.Horizon) bool {
	if o.announced.awaits(o.sub, h, w.pos.TransactionID) {
		o.recheck = min(max(time.Millisecond, 2*o.recheck), w.c.PollInterval, recheckMax)
		return sleep(ctx, o.recheck) // own's loop checks the drain
	}
	// An idle owner wakes in time to renew its lease before it lapses
	// (own's loop renews it), however long the poll back-off has grown.
	t := time.NewTimer(min(o.pollDelay, w.c.LeaseTimeout/3))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-w.drain: // own's loop returns
	case <-o.sub.C:
		o.pollDelay, o.recheck = w.c.PollInterval, 0
	case <-t.C:
		o.pollDelay = min(2*o.pollDelay, w.c.MaxPollInterval)
	}
	return true
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

// loadBlocked reads the streams with a parked event.
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
