// Package notifier wakes a store's subscription workers when events are
// appended: in the process directly, and across processes through the
// driver's Listener (PostgreSQL LISTEN/NOTIFY) when it has one.
//
// One Hub belongs to one store. It keeps at most one listening connection,
// open only while at least one worker is subscribed; when the connection
// drops it reconnects with exponential back-off, and wakes every worker
// after each (re)connection since notifications sent meanwhile are lost.
// Workers poll as well, so a lost wake-up only delays them.
//
// Sending is coalesced: Appended records the highest transaction id to
// announce and, unless a NOTIFY was sent less than the hub's interval ago,
// sends one at once; appends that finish within the interval are
// announced by the next, single, NOTIFY when it ends. So notifications cost
// at most one small transaction per interval per store, whatever the
// append rate, and an append after a quiet spell is announced at once. (Each NOTIFY is a transaction: it takes a transaction id, the
// database-wide notify lock, and a WAL flush at commit.)
package notifier

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// Back-off of the listening connection's reconnections.
const (
	reconnectMin = 50 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// Hub fans notifications out to subscribers. It is safe for concurrent use.
type Hub struct {
	listener meowmxdriver.Listener // nil: in-process wake-ups only
	logger   *slog.Logger
	interval time.Duration // least time between two NOTIFYs

	mu     sync.Mutex
	subs   map[*Sub]struct{}
	cancel context.CancelFunc // stops the listening goroutine
	done   chan struct{}      // closed when it has stopped

	connected atomic.Bool // the listening connection is up

	pending atomic.Uint64 // highest transaction id not yet notified
	sending atomic.Bool   // a NOTIFY is in flight
	senders sync.WaitGroup
	closed  chan struct{} // closed by Close: no more waiting between NOTIFYs
	close   sync.Once
}

// New returns a hub. listener may be nil. A NOTIFY follows the previous
// one no sooner than interval: under load, announcements cost at most one
// small transaction per interval, while an append after a quiet spell is
// announced at once.
func New(listener meowmxdriver.Listener, interval time.Duration, logger *slog.Logger) *Hub {
	return &Hub{listener: listener, interval: interval, logger: logger, subs: map[*Sub]struct{}{}, closed: make(chan struct{})}
}

// Sub receives wake-ups. C has a buffer of one: wake-ups coalesce.
type Sub struct {
	C       chan struct{}
	maxTx   atomic.Uint64
	unknown atomic.Bool // woken without a transaction id since TakeUnknown
}

// TakeUnknown reports whether a wake-up without a transaction id (after a
// reconnection, or an announcement) came since the last call: whatever
// committed before it may not have been announced.
func (s *Sub) TakeUnknown() bool { return s.unknown.Swap(false) }

// MaxTx returns the highest transaction id announced so far (0: unknown).
func (s *Sub) MaxTx() uint64 { return s.maxTx.Load() }

func (s *Sub) wake(tx uint64) {
	if tx == 0 {
		s.unknown.Store(true)
	}
	for {
		old := s.maxTx.Load()
		if tx <= old || s.maxTx.CompareAndSwap(old, tx) {
			break
		}
	}
	select {
	case s.C <- struct{}{}:
	default:
	}
}

// Subscribe registers a subscriber, starting the listening connection if it
// is the first. Call Unsubscribe when done.
func (h *Hub) Subscribe() *Sub {
	s := &Sub{C: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[s] = struct{}{}
	if h.listener != nil && h.cancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel, h.done = cancel, make(chan struct{})
		go h.listen(ctx, h.done)
	}
	return s
}

// Unsubscribe removes a subscriber; the last one stops the listening
// connection and waits for it to close.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	delete(h.subs, s)
	var done chan struct{}
	if len(h.subs) == 0 && h.cancel != nil {
		h.cancel()
		done = h.done
		h.cancel, h.done = nil, nil
	}
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Wake wakes every subscriber of this process, telling them transaction tx
// has committed events (0: unknown).
func (h *Hub) Wake(tx uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.wake(tx)
	}
}

func (h *Hub) listen(ctx context.Context, done chan struct{}) {
	defer close(done)
	backoff := reconnectMin
	for {
		start := time.Now()
		err := h.listener.Listen(ctx, func(tx uint64) {
			h.connected.Store(true) // Listen calls fn(0) once connected
			h.Wake(tx)
		})
		h.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*reconnectMax {
			backoff = reconnectMin // it had been working: retry soon
		}
		h.logger.WarnContext(ctx, "meowmx: notification listener lost; subscriptions poll until it is back",
			"err", err, "retry_in", backoff)
		h.Wake(0) // whatever was missed
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, reconnectMax)
	}
}

// Connected tells whether the listening connection is up: it is open
// while a worker is subscribed, and reconnects when it drops.
func (h *Hub) Connected() bool { return h.connected.Load() }

// Announce wakes every subscriber, in this process and the others: a
// checkpoint was moved or parked events marked for replay.
func (h *Hub) Announce(ctx context.Context) error {
	h.Wake(0)
	if h.listener == nil {
		return nil
	}
	return h.listener.Notify(ctx, 0)
}

// Appended announces committed events of transaction tx: to this process
// at once, and through the listener to the others, after the caller's
// commit and outside it, coalesced.
func (h *Hub) Appended(tx uint64) {
	h.Wake(tx)
	if h.listener == nil {
		return
	}
	for {
		old := h.pending.Load()
		if tx <= old || h.pending.CompareAndSwap(old, tx) {
			break
		}
	}
	if h.sending.CompareAndSwap(false, true) {
		h.senders.Add(1)
		go h.send()
	}
}

// Close sends what is pending at once, without waiting for the interval,
// waits for that (or for ctx to end), and stops the listening connection.
// Workers still subscribed are woken once and then poll. A hub may still
// be used after Close: announcements are then sent without interval.
func (h *Hub) Close(ctx context.Context) error {
	h.close.Do(func() { close(h.closed) })
	sent := make(chan struct{})
	go func() { h.senders.Wait(); close(sent) }()
	var err error
	select {
	case <-sent:
	case <-ctx.Done():
		err = ctx.Err()
	}
	h.mu.Lock()
	var done chan struct{}
	if h.cancel != nil {
		h.cancel()
		done = h.done
		h.cancel, h.done = nil, nil
	}
	h.mu.Unlock()
	if done != nil {
		<-done
		h.Wake(0)
	}
	return err
}

// send notifies until nothing is pending. Exactly one send runs at a time.
func (h *Hub) send() {
	defer h.senders.Done()
	for {
		tx := h.pending.Swap(0)
		if tx != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			sent := time.Now()
			if err := h.listener.Notify(ctx, tx); err != nil {
				h.logger.WarnContext(ctx, "meowmx: notify failed; subscribers in other processes will poll", "err", err)
			}
			cancel()
			// At most one NOTIFY per interval: the first append after a
			// quiet spell is announced at once; those that commit within
			// the interval after it only raise pending, and one NOTIFY
			// announces them all when the interval ends. Each NOTIFY is a
			// transaction that takes the database-wide notify lock.
			if wait := h.interval - time.Since(sent); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-h.closed:
				}
				t.Stop()
			}
		}
		h.sending.Store(false)
		// An Appended between the Swap and the Store saw sending true and
		// left its transaction pending: take it over unless another send
		// started meanwhile.
		if h.pending.Load() == 0 || !h.sending.CompareAndSwap(false, true) {
			return
		}
	}
}
