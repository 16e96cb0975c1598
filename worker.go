package meowmx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// one owns it, holding a lease in the subscription's row, and the others
// stand by. They take it over within SubscriptionConfig.LockInterval when
// the owner leaves, and within LeaseTimeout when it dies or hangs. The
// checkpoint update is fenced on the position the owner read and on its
// lease, so even two workers that overlap for a moment never both commit
// the same events.
//
// A consumer group (SubscriptionConfig.Partitions) is run the same way,
// partition by partition: each worker, a member of the group, owns a
// share of the partitions, ⌊N/W⌋ or ⌈N/W⌉ of N among W members, and
// hands the others to the members they belong to. A member that joins
// takes its share within a few LockIntervals; one that leaves hands its
// partitions over as it goes, and one that dies loses them within
// LeaseTimeout. The database is the coordinator: see runMember.
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
	if c.Partitions > 1 {
		return s.runMember(ctx, c)
	}
	ex := s.driver.Executor()
	w := &worker[TTx]{s: s, c: c, ex: ex, lease: newLease(ex, c.Name, newOwner(), c.LeaseTimeout),
		log: s.config.Logger.With("subscription", c.Name)}
	return w.run(ctx)
}

// worker runs one subscription for RunSubscription. Its states, and what
// moves it from one to the next (run and own are the loops that do it):
//
//	RunSubscription
//	      |
//	      v
//	+-------------+ (a)
//	| standing by |-----+
//	|             |<----+
//	+-------------+<-------------------------------------+
//	      | (b)                                          |
//	      v                                              |
//	+- owning -------------------------------------+     |
//	|                                              |     |
//	|  +----------------+ (c)                      |     |
//	|  | reading a page |-----+                    |     |
//	|  |                |<----+                    |     |
//	|  +----------------+<-------------------+     |     |
//	|     |          |  ^                    |     |     |
//	|     | (h)  (d) |  | (e)                |     |     |
//	|     |          v  |                    |     |     |
//	|     |      +----------+ (f)  +-------+ |     |     |
//	|     |      | handling |----->| retry |---(i)------------> stop
//	|     |      |          |<-----|       | |     |     |
//	|     |      +----------+ (g)  +-------+ |     |     |
//	|     v                                  |     |     |
//	|  +-----------+ (j)                     |     |     |
//	|  | caught up |-------------------------+     |     |
//	|  |  waiting  |---(k)--------------------------------> stop
//	|  +-----------+                               |     |
//	+----------------------------------------------+     |
//	      | (l)                                          |
//	      v                                              |
//	+-----------+ (m)                                    |
//	| lost lease|----------------------------------------+
//	+-----------+
//
// (a) The lease is held by another worker (and has not lapsed), or taking
// it fails: try again after LockInterval.
//
// (b) The worker takes the lease, which reads the checkpoint (a new
// subscription is created first). Owning starts with ParkedList, which
// names the streams with a parked event, preceded on the worker's first
// ownership by SubscriptionEnsure, which stores the configured filter.
//
// Reading a page: every LockInterval, renew the lease (recording progress
// when the worker is caught up);
// near the head (the last page was not full) read the horizon first;
// replay the parked events marked for replay; read up to BatchSize events
// after the checkpoint, or take the page read while the last one was
// handled (a full page has the next one read meanwhile when handling the
// page before it took at least half as long as reading it).
//
// (c) The page was empty, after a full one: read again, horizon first.
//
// (d) The page has events: hand them to the handler, CheckpointEvery per
// transaction, each committed with the checkpoint, fenced on the position
// the worker read.
//
// (e) The page is committed: read the next. A fenced commit (another
// worker, or ResetSubscription, moved the checkpoint) rolls back: the
// worker reloads the checkpoint and the parked streams, and goes on as
// after an empty page, (c) or (h).
//
// (f) The handler failed: the events before the failing one commit (a
// batch handler's events are handed over one at a time to find it), and
// the failing one is retried alone, MaxAttempts times in all, waiting
// RetryBackoff, doubling.
//
// (g) It succeeded; or it failed every attempt under FailurePark: it is
// parked and the checkpoint advances past it. The events after it follow.
//
// (h) The page, read after a horizon, was empty: every event below that
// horizon has been handled. Caught up, the worker warns of the sessions
// that have held the horizon back for HorizonWarnAfter, and every
// PollInterval reloads the checkpoint if it moved. Then it waits: when it
// was woken for a transaction above the horizon (an older one still open
// holds the horizon back), briefly, doubling up to recheckMax (or
// PollInterval), until the horizon passes it; else until a notification,
// or for the poll back-off: PollInterval, doubling up to MaxPollInterval
// while nothing comes.
//
// (i) It failed every attempt under FailureStop: RunSubscription returns a
// *HandlerError; the checkpoint stays before the event.
//
// (j) The wait is over: read the next page.
//
// (k) The checkpoint is at or above the database's next transaction id,
// on two horizons in a row (a restored dump): RunSubscription returns a
// *CheckpointAheadError.
//
// (l) The lease went to another worker (a renewal, or a fenced commit,
// found it taken), or a statement failed: release the lease.
//
// (m) Wait, LockInterval at first, doubling after each ownership that
// failed soon, up to MaxPollInterval (or LockInterval, when longer); then
// try the lease again.
//
// RunSubscription also ends, in any state, when ctx is done (it returns
// nil, and a transaction in progress rolls back), when a reload finds the
// subscription deleted (an error matching ErrSubscriptionNotFound), and
// when the tables are missing (one matching ErrNotMigrated). own returns
// each end but ctx's and ErrNotMigrated, (i) and (k) included, as a
// *stopError, which run unwraps.
type worker[TTx any] struct {
	s     *Store[TTx]
	c     *SubscriptionConfig[TTx]
	ex    meowmxdriver.Executor
	lease *lease
	log   *slog.Logger

	// A consumer group's partition (see runMember): the partition of
	// partitions it reads; drain ends run once the work in hand is
	// committed; standing by is logged at debug level.
	partition, partitions int
	drain                 <-chan struct{}
	quiet                 bool

	pos     Position        // the checkpoint as this worker last read or wrote it
	ensured bool            // the subscription has the configured filter
	blocked map[string]bool // aggregate ids with parked events

	next *prefetch // the page after the one being handled
	// How long the last page took to read, and to handle: they decide
	// whether the next page is read while this one is handled.
	readTook, handleTook time.Duration

	warnings    horizonWarnings
	stallWarned time.Time // when warnStalled last logged
	failing     bool      // an outage is being retried (see failed)

	tel     *subTelemetry // traces and metrics (telemetry.go); nil records nothing
	attempt int           // the attempt at the events being handled (0: the first)
}

// stopError ends RunSubscription with err.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }

// errDrained ends an ownership that was asked to stop (a consumer group's
// partition handed to another member).
var errDrained = errors.New("meowmx: partition handed over")

// errFenced: the checkpoint was not where this worker thought it was.
var errFenced = errors.New("meowmx: checkpoint moved by another session")

// run stands by while another worker holds the subscription's lease, and
// owns the subscription while this one does.
func (w *worker[TTx]) run(ctx context.Context) error {
	defer w.lease.release(ctx)
	w.tel = w.s.tel.track(w.c.Name, w.partition, w.partitions)
	defer w.tel.untrack()
	backoff := newOwnBackoff(w.c.LockInterval, w.c.MaxPollInterval)
	standby := false
	for ctx.Err() == nil {
		ok, pos, err := w.lease.take(ctx, false)
		switch {
		case errors.Is(err, ErrSubscriptionNotFound) && !w.ensured:
			// A new subscription: create it, then try again.
			if err = w.ensure(ctx); err == nil {
				ok, pos, err = w.lease.take(ctx, false)
			}
		case errors.Is(err, ErrSubscriptionNotFound):
			return fmt.Errorf("%w (deleted)", err) // while this worker stood by
		}
		w.pos = pos
		var stop *stopError
		switch {
		case errors.As(err, &stop):
			return stop.err
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrNotMigrated):
			return fmt.Errorf("meowmx: subscription %q: %w", w.c.Name, err)
		case err != nil:
			w.failed(ctx, "meowmx: subscription: cannot take its lease; retrying", err, w.c.LockInterval)
		case !ok:
			w.recovered(ctx)
			if !standby {
				level := slog.LevelInfo
				if w.quiet {
					level = slog.LevelDebug
				}
				w.log.Log(ctx, level, "meowmx: subscription owned by another worker; standing by", "owner", w.lease.holder.String())
				standby = true
			}
			w.warnStalled(ctx)
		default:
			standby = false
			w.log.InfoContext(ctx, "meowmx: subscription owned by this worker", "owner", w.lease.owner.String())
			started := time.Now()
			w.tel.setOwning(true)
			err = w.own(ctx)
			w.tel.setOwning(false)
			w.lease.release(ctx)
			if errors.Is(err, errDrained) {
				return nil
			}
			if end, result := w.ends(ctx, err); end {
				return result
			}
			wait := backoff.after(time.Since(started))
			w.failed(ctx, "meowmx: subscription worker lost ownership or failed; retrying", err, wait)
			if !w.sleep(ctx, wait) {
				return nil
			}
			continue
		}
		if !w.sleep(ctx, w.c.LockInterval) {
			return nil
		}
	}
	return nil
}

// ends tells whether the error that ended an ownership ends
// RunSubscription, and what RunSubscription then returns.
func (w *worker[TTx]) ends(ctx context.Context, err error) (bool, error) {
	var stop *stopError
	switch {
	case errors.As(err, &stop):
		w.log.ErrorContext(ctx, "meowmx: subscription stopped", "err", stop.err)
		return true, stop.err
	case ctx.Err() != nil:
		w.log.InfoContext(ctx, "meowmx: subscription stopped: context done")
		return true, nil
	case errors.Is(err, ErrNotMigrated):
		return true, fmt.Errorf("meowmx: subscription %q: %w", w.c.Name, err)
	}
	return false, nil
}

// ownBackoff spaces a worker's attempts to own its subscription again
// after an ownership that failed: the first wait is LockInterval, and it
// doubles after each failure, up to MaxPollInterval (or LockInterval, when
// that is longer). An ownership that lasted ten times that cap had been
// working: the wait after it starts over.
type ownBackoff struct {
	first, max time.Duration
	wait       time.Duration // the next
}

func newOwnBackoff(lockInterval, maxPollInterval time.Duration) *ownBackoff {
	return &ownBackoff{first: lockInterval, max: max(maxPollInterval, lockInterval), wait: lockInterval}
}

// after returns the wait after an ownership that failed after owned.
func (b *ownBackoff) after(owned time.Duration) time.Duration {
	if owned > 10*b.max {
		b.wait = b.first
	}
	d := b.wait
	b.wait = min(2*b.wait, b.max)
	return d
}

// sleep waits d; false when ctx ended or the worker was drained first.
func (w *worker[TTx]) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-w.drain:
		return false
	case <-t.C:
		return true
	}
}

// drained tells whether the worker was asked to stop.
func (w *worker[TTx]) drained() bool {
	select {
	case <-w.drain:
		return true
	default:
		return false
	}
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

// warnStalled logs, at most once per StalledAfter, that the owner renews
// its lease but has made no progress for longer than StalledAfter: it
// neither commits nor finds itself caught up (a handler failing again and
// again, say). A standby sees it from outside.
func (w *worker[TTx]) warnStalled(ctx context.Context) {
	if w.lease.sinceProgress <= StalledAfter || time.Since(w.stallWarned) < StalledAfter {
		return
	}
	w.stallWarned = time.Now()
	w.log.WarnContext(ctx, "meowmx: the subscription's owner has made no progress; it holds its lease but handles nothing",
		"owner", w.lease.holder.String(), "since_progress", w.lease.sinceProgress.Round(time.Second))
}

// failed logs what interrupted the worker: as a warning the first time,
// at debug level while it goes on, so that an outage is one line.
func (w *worker[TTx]) failed(ctx context.Context, msg string, err error, retryIn time.Duration) {
	if w.failing {
		w.log.DebugContext(ctx, msg, "err", err, "retry_in", retryIn)
		return
	}
	w.failing = true
	w.log.WarnContext(ctx, msg, "err", err, "retry_in", retryIn)
}

// recovered logs the end of an outage that failed logged.
func (w *worker[TTx]) recovered(ctx context.Context) {
	if w.failing {
		w.failing = false
		w.log.InfoContext(ctx, "meowmx: subscription: working again")
	}
}
