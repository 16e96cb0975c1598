package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/meowmx/meowmx"
)

func (a *app) loadCmd() *cobra.Command {
	var o loadOpts
	c := &cobra.Command{
		Use:   "load",
		Short: "Write events to random new and existing streams",
		Long: `Write --events events of aggregate type --type from --concurrency goroutines.
Each event goes to a new stream (--percent-new percent of the time) or to a
random stream this run created, at the version just read, so that writers race
and some appends meet optimistic-concurrency conflicts (counted, not retried).
Streams stop growing at --max-length events. On a terminal a progress line
shows events/s, conflicts and the time elapsed; a summary on stdout ends the
run however it ends: done, interrupted (Ctrl-C, exit 0) or failed.

Database errors (a restart, a lost connection) are retried with back-off, one
log line on stderr per outage. Every event carries a UUID, so an append whose
commit was not confirmed is retried safely: the final count is exact.`,
		Example: `  meowmx load --type cat --events 10000 --concurrency 16
  meowmx --db postgres://localhost:5432/app load --type order --percent-new 50 --max-length 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			a.long = true
			b, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer b.close()
			return a.runLoad(cmd.Context(), b, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.typ, "type", "", "aggregate type of the streams (required)")
	f.IntVar(&o.events, "events", 1000, "events to write")
	f.IntVar(&o.percentNew, "percent-new", 20, "percent of events that start a new stream")
	f.IntVar(&o.maxLength, "max-length", 50, "most events per stream")
	f.IntVar(&o.concurrency, "concurrency", 4, "concurrent writers")
	f.StringSliceVar(&o.eventTypes, "event-types", nil, "event types, comma separated: each event takes one at random (default Created for a new stream's event, Updated for the others)")
	_ = c.MarkFlagRequired("type")
	return c
}

type loadOpts struct {
	typ                                        string
	events, percentNew, maxLength, concurrency int
	eventTypes                                 []string
}

func (o loadOpts) validate() error {
	switch {
	case o.events < 1:
		return usagef("--events %d: want 1 or more", o.events)
	case o.percentNew < 0 || o.percentNew > 100:
		return usagef("--percent-new %d: want 0 to 100", o.percentNew)
	case o.maxLength < 1:
		return usagef("--max-length %d: want 1 or more", o.maxLength)
	case o.concurrency < 1 || o.concurrency > 1024:
		return usagef("--concurrency %d: want 1 to 1024", o.concurrency)
	case slices.Contains(o.eventTypes, ""):
		return usagef("--event-types %q: want one or more names, comma separated", strings.Join(o.eventTypes, ","))
	}
	return nil
}

// loadRun is the shared state of one load run.
type loadRun struct {
	opts      loadOpts
	written   atomic.Int64
	conflicts atomic.Int64
	mu        sync.Mutex
	streams   []string // streams that can still grow
	created   atomic.Int64
	outage    atomic.Bool // a database error is being retried
	log       *slog.Logger
}

// retryable tells whether err may go away when the call is made again:
// anything but a refusal of the call itself.
func retryable(err error) bool {
	for _, final := range []error{meowmx.ErrInvalidArgument, meowmx.ErrNotMigrated, meowmx.ErrConcurrency,
		meowmx.ErrAggregateTypeMismatch, meowmx.ErrDuplicateEvent, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, final) {
			return false
		}
	}
	return true
}

// retry runs fn until it succeeds, fails for good, or ctx ends, backing off
// after database errors. An append that fn retries must carry the same
// event UUIDs each time: an attempt whose commit was not confirmed may
// have written it, and the retry then returns what it wrote.
func (r *loadRun) retry(ctx context.Context, fn func() error) error {
	backoff := 50 * time.Millisecond
	for {
		err := fn()
		switch {
		case err == nil:
			if r.outage.CompareAndSwap(true, false) {
				r.log.InfoContext(ctx, "meowmx: load: the database answers again; going on")
			}
			return nil
		case ctx.Err() != nil || !retryable(err):
			return err
		}
		if r.outage.CompareAndSwap(false, true) {
			r.log.WarnContext(ctx, "meowmx: load: database error; retrying with back-off until it answers", "err", err, "retry_in", backoff)
		}
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (r *loadRun) pick() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.streams) == 0 {
		return "", false
	}
	return r.streams[rand.IntN(len(r.streams))], true
}

func (r *loadRun) add(id string) {
	r.mu.Lock()
	r.streams = append(r.streams, id)
	r.mu.Unlock()
}

func (r *loadRun) retire(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range r.streams {
		if s == id {
			r.streams[i] = r.streams[len(r.streams)-1]
			r.streams = r.streams[:len(r.streams)-1]
			return
		}
	}
}

// eventType returns one of --event-types at random, or def without them.
func (r *loadRun) eventType(def string) string {
	if len(r.opts.eventTypes) == 0 {
		return def
	}
	return r.opts.eventTypes[rand.IntN(len(r.opts.eventTypes))]
}

// one writes one event and returns true, or counts a conflict and returns
// false.
func (r *loadRun) one(ctx context.Context, b *backend) (bool, error) {
	ev := meowmx.EventData{Type: r.eventType("Created"), UUID: uuid.New(),
		Data: mustJSON(map[string]any{"n": rand.IntN(1_000_000), "at": time.Now().UTC()})}
	id, ok := r.pick()
	if !ok || rand.IntN(100) < r.opts.percentNew {
		id = uuid.NewString()
		if err := r.retry(ctx, func() error {
			_, err := b.Append(ctx, meowmx.StreamID{Type: r.opts.typ, ID: id}, meowmx.NoStream, ev)
			return err
		}); err != nil {
			return false, err
		}
		r.created.Add(1)
		if r.opts.maxLength > 1 {
			r.add(id)
		}
		r.written.Add(1)
		return true, nil
	}
	var info *meowmx.StreamInfo
	if err := r.retry(ctx, func() (err error) {
		info, err = b.Stream(ctx, id)
		return err
	}); err != nil {
		return false, err
	}
	ev.Type = r.eventType("Updated")
	err := r.retry(ctx, func() error {
		_, err := b.Append(ctx, info.StreamID, meowmx.Exact(info.Version), ev)
		return err
	})
	switch {
	case errors.Is(err, meowmx.ErrConcurrency):
		r.conflicts.Add(1)
		return false, nil
	case err != nil:
		return false, err
	}
	if info.Version+2 >= int64(r.opts.maxLength) {
		r.retire(id)
	}
	r.written.Add(1)
	return true, nil
}

func (a *app) runLoad(ctx context.Context, b *backend, o loadOpts) error {
	r := &loadRun{opts: o, log: a.log}
	parent := ctx
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, o.concurrency)
	var claimed atomic.Int64 // events handed out; conflicts hand theirs back
	// claim hands out an event, unless all are out. (Adding first and
	// giving back when over would let a writer that gave back after a
	// conflict find them all out for a moment and stop too early.)
	claim := func() bool {
		for {
			c := claimed.Load()
			if c >= int64(o.events) {
				return false
			}
			if claimed.CompareAndSwap(c, c+1) {
				return true
			}
		}
	}
	for range o.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				if !claim() {
					return
				}
				wrote, err := r.one(ctx, b)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				if !wrote {
					claimed.Add(-1) // a conflict: this event is still to write
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	progress := func() string {
		el := time.Since(start)
		return fmt.Sprintf("%d events  %.0f events/s  %d conflicts  %s elapsed",
			r.written.Load(), float64(r.written.Load())/el.Seconds(), r.conflicts.Load(), el.Round(100*time.Millisecond))
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			if a.env.Terminal {
				fmt.Fprintf(a.out(), "\r\033[K%s", progress())
			}
		}
	}
	if a.env.Terminal {
		fmt.Fprint(a.out(), "\r\033[K")
	}
	var err error
	select {
	case err = <-errs:
	default:
		if ctx.Err() != nil && r.written.Load() < int64(o.events) {
			err = ctx.Err()
		}
	}
	if err != nil {
		why := "failed"
		if parent.Err() != nil {
			why = "interrupted" // Ctrl-C
		}
		fmt.Fprintf(a.out(), "%s: wrote %d of %d events (%d new streams of type %s) with %d writers: %s\n",
			why, r.written.Load(), o.events, r.created.Load(), o.typ, o.concurrency, progress())
		return err
	}
	fmt.Fprintf(a.out(), "wrote %d events (%d new streams of type %s) with %d writers: %s\n",
		r.written.Load(), r.created.Load(), o.typ, o.concurrency, progress())
	return nil
}
