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
}

func newLease(ex meowmxdriver.Executor, name string, ttl time.Duration) *lease {
	host, _ := os.Hostname()
	return &lease{ex: ex, name: name, ttl: ttl,
		owner: SubscriptionOwner{ID: uuid.NewString(), Host: host, PID: os.Getpid()}}
}

// take takes or renews the lease; false when another worker holds it. A
// subscription that does not exist yet is created (ensure) first.
func (l *lease) take(ctx context.Context, progress bool, ensure func(context.Context) error) (bool, error) {
	p := &meowmxdriver.SubscriptionLeaseParams{Name: l.name, Owner: l.owner, TTL: l.ttl, Progress: progress}
	r, err := l.ex.SubscriptionLease(ctx, p)
	if errors.Is(err, meowmxdriver.ErrNotFound) && ensure != nil {
		if err = ensure(ctx); err == nil {
			r, err = l.ex.SubscriptionLease(ctx, p)
		}
	}
	if err != nil {
		l.held = false
		return false, err
	}
	l.held, l.holder = r.Held, r.Holder
	return r.Held, nil
}

// renew renews a held lease; errLeaseLost when another worker took it.
func (l *lease) renew(ctx context.Context, progress bool) error {
	ok, err := l.take(ctx, progress, nil)
	switch {
	case errors.Is(err, meowmxdriver.ErrNotFound):
		return &stopError{fmt.Errorf("%w: %q was deleted", ErrSubscriptionNotFound, l.name)}
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("%w (%s)", errLeaseLost, l.holder)
	}
	return nil
}

// release gives the lease up, when held, so that a standby takes over at
// once rather than when it lapses.
func (l *lease) release(ctx context.Context) {
	if l.held {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = l.ex.SubscriptionRelease(ctx, &meowmxdriver.SubscriptionReleaseParams{Name: l.name, Owner: l.owner.ID})
		l.held = false
	}
}
