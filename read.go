package meowmx

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// StreamInfo describes a stream.
type StreamInfo = meowmxtype.StreamInfo

// Stream returns a stream's type and current version, or an error matching
// ErrStreamNotFound.
func (s *Store[TTx]) Stream(ctx context.Context, id string) (*StreamInfo, error) {
	return s.stream(ctx, s.driver.Executor(), id)
}

// StreamTx is Stream inside the caller's transaction.
func (s *Store[TTx]) StreamTx(ctx context.Context, tx TTx, id string) (*StreamInfo, error) {
	return s.stream(ctx, s.driver.UnwrapExecutor(tx), id)
}

func (s *Store[TTx]) stream(ctx context.Context, exec meowmxdriver.Executor, id string) (*StreamInfo, error) {
	if err := checkName("aggregate id", id); err != nil {
		return nil, err
	}
	row, err := exec.StreamGet(ctx, &meowmxdriver.StreamGetParams{AggregateID: id})
	switch {
	case errors.Is(err, meowmxdriver.ErrNotFound), errors.Is(err, meowmxdriver.ErrInvalidInput):
		return nil, fmt.Errorf("%w: %q", ErrStreamNotFound, id)
	case err != nil:
		return nil, fmt.Errorf("meowmx: stream %q: %w", id, err)
	}
	return row, nil
}

// ReadStreamOpts select events of one stream. Nil means every event, oldest
// first.
type ReadStreamOpts struct {
	// From is the lowest version to read, inclusive. Defaults to 0.
	From int64
	// To is the highest version to read, inclusive, or nil for no bound:
	// To: new(int64(9)).
	To *int64
	// Backward reads newest first.
	Backward bool
	// Limit caps how many events are read. Defaults to no limit.
	Limit int
	// Follow makes IterStream wait for the stream's new events once it
	// has read every one, until ctx ends (yielding no error then), or To
	// or Limit is reached; see ReadAllOpts.Follow. ReadStream ignores it.
	Follow bool
}

// ReadStream returns the events of one stream; none when the stream does
// not exist. It reads the whole selection into memory: use IterStream for
// streams that may be long.
func (s *Store[TTx]) ReadStream(ctx context.Context, id string, opts *ReadStreamOpts) ([]*RecordedEvent, error) {
	var out []*RecordedEvent
	for ev, err := range s.iterStream(ctx, s.driver.Executor(), id, noFollow(opts), true) {
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// ReadStreamTx is ReadStream inside the caller's transaction.
func (s *Store[TTx]) ReadStreamTx(ctx context.Context, tx TTx, id string, opts *ReadStreamOpts) ([]*RecordedEvent, error) {
	var out []*RecordedEvent
	for ev, err := range s.iterStream(ctx, s.driver.UnwrapExecutor(tx), id, noFollow(opts), false) {
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// IterStream iterates over the events of one stream, reading Config.PageSize
// events per query, so that a stream of any length is read in bounded
// memory. An error ends the iteration: it is yielded with a nil event.
//
//	for ev, err := range store.IterStream(ctx, "order-1", nil) {
//		if err != nil {
//			return err
//		}
//		...
//	}
func (s *Store[TTx]) IterStream(ctx context.Context, id string, opts *ReadStreamOpts) iter.Seq2[*RecordedEvent, error] {
	return s.iterStream(ctx, s.driver.Executor(), id, opts, true)
}

// iterStream reads a stream page by page. When exec is the pool (pooled)
// and can stream (meowmxdriver.StreamScanner), a read that does not follow
// goes through scanStream instead.
func (s *Store[TTx]) iterStream(ctx context.Context, exec meowmxdriver.Executor, id string, opts *ReadStreamOpts, pooled bool) iter.Seq2[*RecordedEvent, error] {
	var o ReadStreamOpts
	if opts != nil {
		o = *opts
	}
	return func(yield func(*RecordedEvent, error) bool) {
		if err := checkReadStream(id, &o); err != nil {
			yield(nil, err)
			return
		}
		if sc, ok := exec.(meowmxdriver.StreamScanner); ok && pooled && !o.Follow {
			s.scanStream(ctx, sc, id, &o, yield)
			return
		}
		from, to := o.From, int64(math.MaxInt64)
		if o.To != nil {
			to = *o.To
		}
		var f *follower
		if o.Follow {
			f = s.follow(exec)
			defer f.close()
		}
		left := o.Limit
		var h *meowmxdriver.Horizon
		for from <= to {
			var err error
			var rows []*RecordedEvent
			if f != nil && h == nil {
				if h, err = f.horizon(ctx); err != nil {
					if f.failed(ctx, err) {
						h = nil
						continue
					}
					return
				}
			}
			// A page asks for one row more than it yields: the extra row
			// tells whether another page follows, so that a stream whose
			// length is a multiple of the page size costs no extra, empty
			// query. The page that reaches o.Limit needs no such row.
			n, ask := s.config.PageSize, s.config.PageSize+1
			if o.Limit > 0 && left <= n {
				n, ask = left, left
			}
			rctx, span := s.tel.startRead(ctx, "read_stream", nil)
			if recording(span) { // no attributes built otherwise
				span.SetAttributes(keyStreamID.String(id))
			}
			rows, err = exec.StreamRead(rctx, &meowmxdriver.StreamReadParams{
				AggregateID: id, From: from, To: to, Backward: o.Backward, Limit: ask,
			})
			endRead(span, len(rows), err)
			switch {
			case errors.Is(err, meowmxdriver.ErrInvalidInput): // not a valid id for the column: no such stream
				return
			case err != nil && f != nil && f.failed(ctx, err):
				h = nil
				continue
			case err != nil && f != nil && ctx.Err() != nil:
				return
			case err != nil:
				yield(nil, fmt.Errorf("meowmx: read stream %q: %w", id, err))
				return
			}
			more := len(rows) > n
			if more {
				rows = rows[:n]
			}
			for _, r := range rows {
				if !yield(r, nil) {
					return
				}
			}
			left -= len(rows)
			if o.Limit > 0 && left <= 0 {
				return
			}
			if len(rows) > 0 {
				if last := rows[len(rows)-1].Version; o.Backward {
					to = last - 1
				} else {
					from = last + 1
				}
			}
			if !more {
				if f == nil || o.Backward || !f.caughtUp(ctx, h, 0) {
					return
				}
			}
			h = nil
		}
	}
}

// scanWindowPages is how many pages (Config.PageSize) one query of
// scanStream reads.
const scanWindowPages = 16

// scanStream reads a stream in windows of scanWindowPages pages, each one
// query whose rows it yields as they arrive (meowmxdriver.StreamScanner):
// the database sends rows while the caller decodes and handles the ones
// before, as with one streaming query, where page after page each waited
// for the other (IterStream read at 0.56x one streaming query). Memory
// stays flat: the rows not yet decoded wait in the connection's buffers,
// and the connection is the caller's while it handles a window's events.
// When the caller stops, the rest of the window is read and dropped.
func (s *Store[TTx]) scanStream(ctx context.Context, sc meowmxdriver.StreamScanner, id string, o *ReadStreamOpts, yield func(*RecordedEvent, error) bool) {
	from, to, left := o.From, int64(math.MaxInt64), o.Limit
	if o.To != nil {
		to = *o.To
	}
	window := s.config.PageSize * scanWindowPages
	for from <= to {
		ask := window
		if o.Limit > 0 && left < ask {
			ask = left
		}
		got, last, stopped := 0, int64(0), false
		err := sc.StreamScan(ctx, &meowmxdriver.StreamReadParams{
			AggregateID: id, From: from, To: to, Backward: o.Backward, Limit: ask,
		}, func(c []*RecordedEvent) bool {
			got, last = got+len(c), c[len(c)-1].Version
			for _, ev := range c {
				if !yield(ev, nil) {
					stopped = true
					return false
				}
			}
			return true
		})
		switch {
		case stopped:
			return
		case errors.Is(err, meowmxdriver.ErrInvalidInput): // not a valid id for the column: no such stream
			return
		case err != nil:
			yield(nil, fmt.Errorf("meowmx: read stream %q: %w", id, err))
			return
		}
		if left -= got; got < ask || (o.Limit > 0 && left <= 0) {
			return
		}
		if o.Backward {
			to = last - 1
		} else {
			from = last + 1
		}
	}
}

// noFollow returns opts without Follow.
func noFollow(opts *ReadStreamOpts) *ReadStreamOpts {
	if opts == nil || !opts.Follow {
		return opts
	}
	o := *opts
	o.Follow = false
	return &o
}

func checkReadStream(id string, o *ReadStreamOpts) error {
	if err := checkName("aggregate id", id); err != nil {
		return err
	}
	switch {
	case o.From < 0:
		return &ArgumentError{Arg: "ReadStreamOpts.From", Reason: fmt.Sprintf("%d is negative", o.From)}
	case o.To != nil && *o.To < 0:
		return &ArgumentError{Arg: "ReadStreamOpts.To", Reason: fmt.Sprintf("%d is negative", *o.To)}
	case o.Limit < 0:
		return &ArgumentError{Arg: "ReadStreamOpts.Limit", Reason: fmt.Sprintf("%d is negative", o.Limit)}
	}
	return nil
}

// ReadAllOpts select events across streams. Nil means all events from the
// beginning, one page.
type ReadAllOpts struct {
	// After is the position to read after. Defaults to the beginning.
	After Position
	// AggregateTypes, when not empty, selects the events of these
	// aggregate types (categories) only.
	AggregateTypes []string
	// EventTypes, when not empty, selects the events of these types only.
	EventTypes []string
	// Limit caps how many events ReadAll returns. Defaults to
	// Config.PageSize. IterAll ignores it.
	Limit int
	// Follow makes IterAll wait for new events once it has read every
	// one, instead of ending, woken by the store's notifications (and the
	// driver's probe for other writers): it ends when ctx ends, yielding
	// no error then. Database errors are logged (Config.Logger) and
	// retried with back-off, so that it rides out a database restart.
	// ReadAll ignores it.
	Follow bool
	// AwaitOlder is how long an IterAll that does not follow waits, once
	// it has read every event below the horizon, for the transactions that
	// began before it to end, so that it returns every event committed
	// before it was called, also behind a transaction still open then (see
	// ReadAll). When the wait runs out it ends at the horizon and logs a
	// warning. Zero: it ends at the horizon at once. On SQLite there is no
	// horizon to wait for. ReadAll ignores it.
	AwaitOlder time.Duration
	// Backward makes ReadAll read newest first: the events before After,
	// or the newest when After is the zero Position. Page back by passing
	// the last event's Position as the next call's After. IterAll refuses
	// it.
	Backward bool
}

// ReadAll returns events of all streams, or of some categories, in global
// order (Position) after opts.After. Page through them by passing the last
// event's Position as the next call's After.
//
// On PostgreSQL it returns only events of transactions below the commit
// horizon (pg_snapshot_xmin): every transaction that could still commit an
// event before them has ended. A reader paging forward therefore never
// skips an event, but events of a transaction appear only once every older
// transaction in the database has ended: long transactions delay readers.
func (s *Store[TTx]) ReadAll(ctx context.Context, opts *ReadAllOpts) ([]*RecordedEvent, error) {
	var o ReadAllOpts
	if opts != nil {
		o = *opts
	}
	if err := checkReadAll(&o); err != nil {
		return nil, err
	}
	if o.Limit == 0 {
		o.Limit = s.config.PageSize
	}
	if o.Backward {
		if s.caps.Browser == nil {
			return nil, ErrBrowseUnsupported
		}
		evs, err := s.caps.Browser.EventReadBackward(ctx, &meowmxdriver.EventReadBackwardParams{
			Before: o.After, AggregateTypes: o.AggregateTypes, EventTypes: o.EventTypes, Limit: o.Limit})
		if err != nil {
			return nil, fmt.Errorf("meowmx: read all backward: %w", err)
		}
		return evs, nil
	}
	return s.readAll(ctx, s.driver.Executor(), &o)
}

// IterAll iterates over the events that ReadAll selects, all of them from
// opts.After on, reading Config.PageSize events per query. It ends when it
// has read every event below the horizon, unless opts.Follow. An error
// ends the iteration: it is yielded with a nil event.
func (s *Store[TTx]) IterAll(ctx context.Context, opts *ReadAllOpts) iter.Seq2[*RecordedEvent, error] {
	var o ReadAllOpts
	if opts != nil {
		o = *opts
	}
	return func(yield func(*RecordedEvent, error) bool) {
		if err := checkReadAll(&o); err != nil {
			yield(nil, err)
			return
		}
		if o.Backward {
			yield(nil, &ArgumentError{Arg: "ReadAllOpts.Backward", Reason: "IterAll reads forward only; page back with ReadAll"})
			return
		}
		o.Limit = s.config.PageSize
		exec := s.driver.Executor()
		var h, start *meowmxdriver.Horizon
		var began time.Time
		var recheck time.Duration
		if !o.Follow && o.AwaitOlder > 0 {
			var err error
			if start, err = exec.HorizonGet(ctx); err != nil {
				yield(nil, fmt.Errorf("meowmx: read all: %w", err))
				return
			}
			began = time.Now()
		}
		if sc, ok := exec.(meowmxdriver.StreamScanner); ok && !o.Follow {
			// Read what is below the horizon in windows; pages then wait
			// for the transactions older than the read (AwaitOlder).
			if !s.scanAll(ctx, sc, &o, yield) || start == nil {
				return
			}
		}
		var f *follower
		if o.Follow {
			f = s.follow(exec)
			defer f.close()
		}
		for {
			var err error
			if (f != nil || start != nil) && h == nil {
				h, err = exec.HorizonGet(ctx)
			}
			var page []*RecordedEvent
			if err == nil {
				page, err = s.readAll(ctx, exec, &o)
			}
			if err != nil {
				if f != nil && f.failed(ctx, err) {
					h = nil
					continue
				}
				if ctx.Err() == nil || f == nil {
					yield(nil, err)
				}
				return
			}
			for _, ev := range page {
				if !yield(ev, nil) {
					return
				}
			}
			if len(page) > 0 {
				o.After = page[len(page)-1].Position
			}
			if len(page) == o.Limit {
				h = nil // not caught up: no need of a horizon
				continue
			}
			if f == nil {
				if start == nil || h.Xmin >= start.Xmax {
					return // every transaction older than the read has ended
				}
				if time.Since(began) >= o.AwaitOlder {
					s.config.Logger.WarnContext(ctx, "meowmx: read all ends at the commit horizon: "+
						"transactions older than the read are still open, and their events are not read",
						"waited", o.AwaitOlder, "horizon", h.Xmin)
					return
				}
				recheck = min(max(time.Millisecond, 2*recheck), followRecheckMax)
				if !sleep(ctx, recheck) {
					return
				}
				h = nil
				continue
			}
			if !f.caughtUp(ctx, h, o.After.TransactionID) {
				return
			}
			h = nil
		}
	}
}

// scanAll is scanStream for IterAll without Follow: windows of
// scanWindowPages pages, each one query below the commit horizon of its
// own, yielded as its rows arrive. It reports whether it read to the end
// (no error, the caller did not stop).
func (s *Store[TTx]) scanAll(ctx context.Context, sc meowmxdriver.StreamScanner, o *ReadAllOpts, yield func(*RecordedEvent, error) bool) bool {
	window := s.config.PageSize * scanWindowPages
	for {
		got, stopped := 0, false
		err := sc.EventScanAll(ctx, &meowmxdriver.EventReadAllParams{
			After: o.After, AggregateTypes: o.AggregateTypes, EventTypes: o.EventTypes, Limit: window,
		}, func(c []*RecordedEvent) bool {
			got += len(c)
			o.After = c[len(c)-1].Position
			for _, ev := range c {
				if !yield(ev, nil) {
					stopped = true
					return false
				}
			}
			return true
		})
		switch {
		case stopped:
			return false
		case err != nil:
			yield(nil, fmt.Errorf("meowmx: read all: %w", err))
			return false
		case got < window:
			return true
		}
	}
}

func (s *Store[TTx]) readAll(ctx context.Context, exec meowmxdriver.Executor, o *ReadAllOpts) ([]*RecordedEvent, error) {
	ctx, span := s.tel.startRead(ctx, "read_all", nil)
	if recording(span) { // no attributes built otherwise
		span.SetAttributes(keyPosition.String(o.After.String()))
	}
	evs, err := exec.EventReadAll(ctx, &meowmxdriver.EventReadAllParams{
		After: o.After, AggregateTypes: o.AggregateTypes, EventTypes: o.EventTypes, Limit: o.Limit,
	})
	endRead(span, len(evs), err)
	if err != nil {
		return nil, fmt.Errorf("meowmx: read all: %w", err)
	}
	return evs, nil
}

func checkReadAll(o *ReadAllOpts) error {
	if o.Limit < 0 {
		return &ArgumentError{Arg: "ReadAllOpts.Limit", Reason: fmt.Sprintf("%d is negative", o.Limit)}
	}
	if o.After.EventID < 0 {
		return &ArgumentError{Arg: "ReadAllOpts.After", Reason: "negative event id"}
	}
	for _, t := range o.AggregateTypes {
		if err := checkName("aggregate type", t); err != nil {
			return err
		}
	}
	for _, t := range o.EventTypes {
		if err := checkName("event type", t); err != nil {
			return err
		}
	}
	return nil
}
