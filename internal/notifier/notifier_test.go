package notifier

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeListener records notifications; Notify blocks until unblocked.
type fakeListener struct {
	gate     chan struct{}
	inFlight atomic.Int32
	maxIn    atomic.Int32
	mu       sync.Mutex
	sent     []uint64
	listens  atomic.Int32
	fail     atomic.Bool
	deliver  chan uint64
}

func (f *fakeListener) Listen(ctx context.Context, fn func(uint64)) error {
	f.listens.Add(1)
	if f.fail.Load() {
		return errors.New("connection refused")
	}
	fn(0)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case tx := <-f.deliver:
			fn(tx)
		}
	}
}

func (f *fakeListener) Notify(_ context.Context, tx uint64) error {
	n := f.inFlight.Add(1)
	for {
		old := f.maxIn.Load()
		if n <= old || f.maxIn.CompareAndSwap(old, n) {
			break
		}
	}
	<-f.gate
	f.mu.Lock()
	f.sent = append(f.sent, tx)
	f.mu.Unlock()
	f.inFlight.Add(-1)
	return nil
}

// top returns the highest transaction id notified and the count.
func (f *fakeListener) top() (uint64, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var top uint64
	for _, tx := range f.sent {
		top = max(top, tx)
	}
	return top, len(f.sent)
}

func TestAppendedCoalesces(t *testing.T) {
	t.Parallel()
	f := &fakeListener{gate: make(chan struct{})}
	h := New(f, 0, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				h.Appended(uint64(g*100 + i + 1))
			}
		}()
	}
	wg.Wait()
	close(f.gate)
	require.Eventually(t, func() bool {
		top, _ := f.top()
		return top == 1600 && h.pending.Load() == 0 && !h.sending.Load()
	}, 10*time.Second, time.Millisecond)
	_, n := f.top()
	require.Less(t, n, 1600, "notifications coalesce")
	require.EqualValues(t, 1, f.maxIn.Load(), "at most one NOTIFY in flight")
}

func TestSubscribeWakesAndListens(t *testing.T) {
	t.Parallel()
	f := &fakeListener{gate: make(chan struct{}), deliver: make(chan uint64)}
	close(f.gate)
	h := New(f, 0, slog.New(slog.DiscardHandler))
	s := h.Subscribe()
	<-s.C // the wake-up after connecting
	f.deliver <- 42
	<-s.C
	require.EqualValues(t, 42, s.MaxTx())
	h.Appended(41) // older: the maximum stays
	<-s.C
	require.EqualValues(t, 42, s.MaxTx())
	h.Unsubscribe(s) // stops the listening goroutine (goleak checks)
	require.EqualValues(t, 1, f.listens.Load())
}

func TestListenReconnects(t *testing.T) {
	t.Parallel()
	f := &fakeListener{gate: make(chan struct{}), deliver: make(chan uint64)}
	f.fail.Store(true)
	h := New(f, 0, slog.New(slog.DiscardHandler))
	s := h.Subscribe()
	defer h.Unsubscribe(s)
	<-s.C // woken after the failure, to poll
	require.Eventually(t, func() bool { return f.listens.Load() >= 2 }, 10*time.Second, time.Millisecond)
	f.fail.Store(false)
	f.deliver <- 7
	require.Eventually(t, func() bool { return s.MaxTx() == 7 }, 10*time.Second, time.Millisecond)
}
