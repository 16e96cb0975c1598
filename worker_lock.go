package meowmx

import (
	"context"
	"sync"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// lock returns the subscription's lock: the driver's, across processes,
// when it has one, else one within the process.
func (w *worker[TTx]) lock() meowmxdriver.SubscriptionLock {
	if l := w.s.caps.SubscriptionLocker; l != nil {
		return l.SubscriptionLock(w.c.Name)
	}
	return w.s.locks.lock(w.c.Name)
}

// localLocks are subscription locks within one process, for drivers
// without locks of their own.
type localLocks struct {
	mu   sync.Mutex
	held map[string]bool // by subscription name
}

// lock returns the handle of one subscription's lock, not yet taken.
func (l *localLocks) lock(name string) meowmxdriver.SubscriptionLock {
	return &localLock{l: l, name: name}
}

// localLock is one worker's handle on a lock of localLocks.
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

// Check returns nil: a lock within the process cannot be lost.
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
