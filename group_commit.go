package meowmx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// ErrCommitUnknown matches errors of appends whose outcome is unknown: the
// append was sent, then the connection to the database broke (or the
// caller's context ended) before the commit was confirmed. Its events may
// or may not be stored. Retrying the append with the same event UUIDs is
// safe and gives the answer: the retry returns the stored result when the
// first attempt committed, and appends otherwise. Appends without UUIDs
// cannot tell; read the stream to find out.
//
// Errors of appends that the database refused, or that failed before they
// were sent, do not match it: nothing was written.
var ErrCommitUnknown = meowmxtype.ErrCommitUnknown

// groupInFlightDefault is how many batches one store commits at once, and
// groupStallAfter how long the batch in flight runs before a second one
// may go beside it. One batch at a time makes the fewest and largest
// batches: the appends that arrive while it commits all go in the next
// one, so client and server spend the least CPU per append, without
// losing throughput (docs/BENCHMARKS.md, group commit, "One batch in
// flight"). The second keeps a batch that waits (for a stream's lock, a
// slow commit) from holding up every append of the store: appends made
// once it has been in flight for groupStallAfter go in another.
const (
	groupInFlightDefault = 2
	groupStallAfter      = 5 * time.Millisecond
)

// groupCommitter coalesces concurrent appends into shared transactions.
// It has no long-lived goroutine. An append that finds no batch running
// sends itself at once from its caller's goroutine; when it is done, a
// flusher takes over the appends queued meanwhile, sending batches while
// appends are queued, and then ends. An append that finds fewer than
// inFlight batches running, the last sent groupStallAfter ago, starts
// another flusher.
type groupCommitter struct {
	send     func(context.Context, []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error)
	onBatch  func(n int) // called with the size of each batch sent; may be nil
	window   time.Duration
	maxBatch int
	inFlight int

	mu       sync.Mutex
	queue    []*groupAppend
	flushers int           // running flushers, at most inFlight
	sentAt   time.Time     // when the last batch was sent
	full     chan struct{} // signalled when the queue holds maxBatch appends
}

// groupAppend is one caller's append, queued or in a batch.
type groupAppend struct {
	p     *meowmxdriver.EventAppendParams
	done  chan groupResult // buffered: the flusher never waits for the caller
	batch *groupBatch      // set under mu when taken from the queue
	left  atomic.Bool      // the caller no longer waits for batch
}

// groupResult is the outcome of one append in a batch.
type groupResult struct {
	res   *meowmxdriver.EventAppendResult
	err   error
	batch int // the size of the batch it was sent in (0: not sent)
}

// groupBatch is the appends sent together. Its context ends when every
// caller in it has given up.
type groupBatch struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiting atomic.Int64
}

// leave records that a's caller no longer waits for its batch.
func (a *groupAppend) leave() {
	if a.left.CompareAndSwap(false, true) && a.batch.waiting.Add(-1) == 0 {
		a.batch.cancel()
	}
}

func newGroupCommitter(send func(context.Context, []*meowmxdriver.EventAppendParams) ([]*meowmxdriver.EventAppendResult, error), cfg GroupCommitConfig) *groupCommitter {
	return &groupCommitter{
		send:     send,
		window:   cfg.Window,
		maxBatch: cfg.MaxBatch,
		inFlight: groupInFlightDefault,
		full:     make(chan struct{}, 1),
	}
}

// append queues p for the next batch and waits for its outcome, or for
// ctx to end. An append still queued when ctx ends is dropped, and the
// error wraps ctx.Err(): nothing was written. Once sent, it may commit:
// the error wraps ctx.Err() and ErrCommitUnknown. On an idle store p is
// sent at once under ctx, and the driver's error says the same.
func (g *groupCommitter) append(ctx context.Context, p *meowmxdriver.EventAppendParams) groupResult {
	if err := ctx.Err(); err != nil {
		return groupResult{err: err}
	}
	g.mu.Lock()
	if g.flushers == 0 {
		// An idle store: nothing is queued. This goroutine sends the
		// append at once, as a batch of its own, and hands the flusher's
		// place on to a new one if appends queued meanwhile.
		g.flushers++
		g.sentAt = time.Now()
		g.mu.Unlock()
		r := g.runAlone(ctx, p)
		g.mu.Lock()
		if len(g.queue) > 0 {
			go g.flush(true)
		} else {
			g.flushers--
		}
		g.mu.Unlock()
		return r
	}
	a := &groupAppend{p: p, done: make(chan groupResult, 1)}
	g.queue = append(g.queue, a)
	if len(g.queue) >= g.maxBatch {
		select {
		case g.full <- struct{}{}:
		default:
		}
	}
	start := g.flushers < g.inFlight && time.Since(g.sentAt) >= groupStallAfter
	if start {
		g.flushers++
	}
	busy := g.flushers > 1
	g.mu.Unlock()
	if start {
		go g.flush(busy)
	}

	select {
	case r := <-a.done:
		return r
	case <-ctx.Done():
	}
	g.mu.Lock()
	b := a.batch
	if b == nil {
		g.queue = slices.DeleteFunc(g.queue, func(q *groupAppend) bool { return q == a })
	}
	g.mu.Unlock()
	if b == nil {
		return groupResult{err: ctx.Err()}
	}
	select {
	case r := <-a.done: // it ended meanwhile
		return r
	default:
	}
	a.leave()
	return groupResult{err: fmt.Errorf("%w: %w", ErrCommitUnknown, ctx.Err())}
}

// flush sends batches while appends are queued. busy tells whether
// another batch was in flight when it started: only then does the first
// batch wait for the window.
func (g *groupCommitter) flush(busy bool) {
	for {
		if busy && g.window > 0 {
			g.waitWindow()
		}
		g.mu.Lock()
		n := min(len(g.queue), g.maxBatch)
		if n == 0 {
			g.flushers--
			g.mu.Unlock()
			return
		}
		items := slices.Clone(g.queue[:n])
		g.queue = slices.Delete(g.queue, 0, n)
		g.sentAt = time.Now()
		b := &groupBatch{}
		b.ctx, b.cancel = context.WithCancel(context.Background())
		b.waiting.Store(int64(n))
		for _, a := range items {
			a.batch = b
		}
		g.mu.Unlock()
		g.run(b, items)
		b.cancel()
		busy = true
		// Let the callers just answered run: those that append again at
		// once join the next batch instead of the one after it.
		runtime.Gosched()
	}
}

// runAlone sends p as a batch of its own, which the driver runs as
// EventAppend: its outcome, error included, is final.
func (g *groupCommitter) runAlone(ctx context.Context, p *meowmxdriver.EventAppendParams) groupResult {
	g.sent(1)
	results, err := g.send(ctx, []*meowmxdriver.EventAppendParams{p})
	switch {
	case err != nil:
		return groupResult{err: err, batch: 1}
	case len(results) != 1:
		return groupResult{err: fmt.Errorf("meowmx: driver returned %d results for 1 append", len(results)), batch: 1}
	}
	return groupResult{res: results[0], batch: 1}
}

// sent reports a batch of n appends sent.
func (g *groupCommitter) sent(n int) {
	if g.onBatch != nil {
		g.onBatch(n)
	}
}

// waitWindow waits for the window to pass or the queue to fill.
func (g *groupCommitter) waitWindow() {
	select {
	case <-g.full: // stale: the queue it announced was taken
	default:
	}
	g.mu.Lock()
	full := len(g.queue) >= g.maxBatch
	g.mu.Unlock()
	if full {
		return
	}
	t := time.NewTimer(g.window)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.full:
	}
}

// run commits one batch and hands each caller its outcome. When one
// append makes the transaction fail, it is sent alone, and the others are
// sent again without it, so that no append fails on another's account and
// each gets the outcome it would have had without group commit.
func (g *groupCommitter) run(b *groupBatch, items []*groupAppend) {
	// One order for every batch: appends sorted by aggregate id, a
	// stream's appends in arrival order, so that two batches in flight (or
	// two processes) lock their streams in the same order where the driver
	// follows it. A deadlock that happens anyway fails one append, which
	// then runs alone.
	slices.SortStableFunc(items, func(x, y *groupAppend) int { return cmp.Compare(x.p.Stream.ID, y.p.Stream.ID) })
	for len(items) > 0 {
		ps := make([]*meowmxdriver.EventAppendParams, len(items))
		for i, a := range items {
			ps[i] = a.p
		}
		g.sent(len(ps))
		results, err := g.send(b.ctx, ps)
		var ie *meowmxdriver.BatchItemError
		switch {
		case errors.As(err, &ie) && ie.Index >= 0 && ie.Index < len(items):
			a := items[ie.Index]
			a.done <- g.runAlone(b.ctx, a.p)
			a.leave()
			items = slices.Delete(items, ie.Index, ie.Index+1)
			continue
		case err == nil && len(results) != len(items):
			err = fmt.Errorf("meowmx: driver returned %d results for %d appends", len(results), len(items))
		}
		for i, a := range items {
			switch {
			case err != nil:
				a.done <- groupResult{err: err, batch: len(items)}
			case results[i].Err != nil:
				a.done <- groupResult{err: results[i].Err, batch: len(items)}
			default:
				a.done <- groupResult{res: results[i], batch: len(items)}
			}
		}
		return
	}
}
