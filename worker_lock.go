package meowmx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// errLeaseLost: another worker holds the subscription's lease now.
var errLeaseLost = errors.New("meowmx: subscription lease lost to another worker")

// lease is one worker's hold on a subscription: a lease in the
// subscription's row that the owner renews every LockInterval while it
// works (and with every checkpoint it commits), and that lapses
// LeaseTimeout after the last renewal. It works alike within a process,
// across processes and across machines, and a hung owner loses it.
type lease struct {
	ex    meowmxdriver.Executor
	name  string
	owner SubscriptionOwner
	ttl   time.Duration
	held  bool
	// holder is the other worker that held the lease at the last try.
	holder SubscriptionOwner
	// renewed is when the lease was last taken or renewed.
	renewed time.Time
	// sinceProgress is how long ago the holder last made progress, at
	// the last try (-1: never).
	sinceProgress time.Duration
}

func newLease(ex meowmxdriver.Executor, name string, owner SubscriptionOwner, ttl time.Duration) *lease {
	return &lease{ex: ex, name: name, ttl: ttl, owner: owner}
}

// newOwner returns a new worker's identity: one per RunSubscription.
func newOwner() SubscriptionOwner {
	host, _ := os.Hostname()
	return SubscriptionOwner{ID: uuid.NewString(), Host: host, PID: os.Getpid()}
}

// take takes or renews the lease and returns the checkpoint; false when
// another worker holds it. A subscription that does not exist is an error
// matching ErrSubscriptionNotFound.
func (l *lease) take(ctx context.Context, progress bool) (bool, Position, error) {
	r, err := l.ex.SubscriptionLease(ctx, &meowmxdriver.SubscriptionLeaseParams{
		Name: l.name, Owner: l.owner, TTL: l.ttl, Progress: progress})
	switch {
	case errors.Is(err, meowmxdriver.ErrNotFound):
		l.held = false
		return false, Position{}, fmt.Errorf("%w: %q", ErrSubscriptionNotFound, l.name)
	case err != nil:
		l.held = false
		return false, Position{}, err
	}
	l.held, l.holder, l.sinceProgress = r.Held, r.Holder, r.SinceProgress
	if r.Held {
		l.renewed = time.Now()
	}
	return r.Held, r.Position, nil
}

// renew renews a held lease; errLeaseLost when another worker took it. A
// deleted subscription stops the worker.
func (l *lease) renew(ctx context.Context, progress bool) error {
	ok, _, err := l.take(ctx, progress)
	switch {
	case errors.Is(err, ErrSubscriptionNotFound):
		return &stopError{fmt.Errorf("%w (deleted)", err)}
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w (%s)", errLeaseLost, l.holder)
	}
	return nil
}

// release gives the lease up, when held, so that a standby takes over at
// once rather than when it lapses, and removes the worker from the
// subscription's workers.
func (l *lease) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = l.ex.SubscriptionRelease(ctx, &meowmxdriver.SubscriptionReleaseParams{Name: l.name, Owner: l.owner.ID})
	l.held = false
}
