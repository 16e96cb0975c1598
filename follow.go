package meowmx

import (
	"context"
	"errors"
	"time"

	"github.com/meowmx/meowmx/internal/notifier"
	"github.com/meowmx/meowmx/meowmxdriver"
)

// Pacing of readers that follow the store (ReadAllOpts.Follow,
// ReadStreamOpts.Follow).
const (
	// followPoll is how long a follower that is caught up waits when no
	// notification comes: wake-ups (NOTIFY, the driver's probe, this
	// store's appends) normally end the wait much sooner.
	followPoll = time.Second
	// followRecheckMax caps the back-off of the re-reads after a wake-up
	// for a transaction that the horizon has not passed yet.
	followRecheckMax = 100 * time.Millisecond
	// followRetryMin and followRetryMax bound the back-off after a
	// database error.
	followRetryMin, followRetryMax = 50 * time.Millisecond, 5 * time.Second
)

// follower paces a reader that follows the store: it waits for wake-ups
// once the reader has caught up, and backs off after database errors.
type follower struct {
	exec    meowmxdriver.Executor
	hub     *notifier.Hub
	sub     *notifier.Sub
	log     func(msg string, args ...any)
	want    announced
	recheck time.Duration // back-off of re-reads for a transaction above the horizon
	retry   time.Duration // back-off after a database error; 0: none failed
}

func (s *Store[TTx]) follow(exec meowmxdriver.Executor) *follower {
	return &follower{exec: exec, hub: s.hub, sub: s.hub.Subscribe(),
		log: func(msg string, args ...any) { s.config.Logger.Warn(msg, args...) }}
}

func (f *follower) close() { f.hub.Unsubscribe(f.sub) }

// horizon reads the commit horizon before a page, so that when the page
// comes back empty everything below it has been read.
func (f *follower) horizon(ctx context.Context) (*meowmxdriver.Horizon, error) {
	return f.exec.HorizonGet(ctx)
}

// caughtUp waits, after a page read after h came back short, until new
// events may be readable after pos. False when ctx ended.
func (f *follower) caughtUp(ctx context.Context, h *meowmxdriver.Horizon, pos uint64) bool {
	if f.retry > 0 {
		f.log("meowmx: following the store again after database errors")
		f.retry = 0
	}
	if f.want.awaits(f.sub, h, pos) { // read again soon
		f.recheck = min(max(time.Millisecond, 2*f.recheck), followRecheckMax)
		return sleep(ctx, f.recheck)
	}
	f.recheck = 0
	t := time.NewTimer(followPoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-f.sub.C:
	case <-t.C:
	}
	return true
}

// failed backs off after a database error; false when ctx ended, or when
// err is not one that waiting cures (the tables are missing), which the
// reader then yields.
func (f *follower) failed(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrNotMigrated) || errors.Is(err, ErrInvalidArgument) {
		return false
	}
	if f.retry == 0 {
		f.retry = followRetryMin
		f.log("meowmx: following the store: database error; retrying", "err", err, "retry_in", f.retry)
	} else {
		f.retry = min(2*f.retry, followRetryMax)
	}
	return sleep(ctx, f.retry)
}

// announced is the highest transaction id that a reader's wake-ups
// announced.
type announced uint64

// awaits tells whether the reader, caught up after pos with the events
// below h, was woken for a transaction that h has not passed yet: an older
// transaction is still open, and the announced one's events become
// readable when it ends. A wake-up that names no transaction stands for
// every transaction begun so far.
func (a *announced) awaits(sub *notifier.Sub, h *meowmxdriver.Horizon, pos uint64) bool {
	*a = max(*a, announced(sub.MaxTx()))
	if sub.TakeUnknown() && h.Xmax > 0 {
		*a = max(*a, announced(h.Xmax-1))
	}
	return h.Xmin != 0 && uint64(*a) >= h.Xmin && uint64(*a) > pos
}
