package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxdriver"
)

// runSubscriptions registers the subscription tests.
func runSubscriptions[TTx any](t *testing.T, b Backend[TTx]) {
	t.Run("SubscriptionBasics", func(t *testing.T) { t.Parallel(); testSubscriptionBasics(t, b) })
	t.Run("SubscriptionStartFrom", func(t *testing.T) { t.Parallel(); testSubscriptionStartFrom(t, b) })
	t.Run("SubscriptionEnsure", func(t *testing.T) { t.Parallel(); testSubscriptionEnsure(t, b) })
	t.Run("SubscriptionBadConfig", func(t *testing.T) { t.Parallel(); testSubscriptionBadConfig(t, b) })
	t.Run("SubscriptionStress", func(t *testing.T) { t.Parallel(); testSubscriptionStress(t, b) })
	t.Run("SubscriptionStop", func(t *testing.T) { t.Parallel(); testSubscriptionStop(t, b) })
	t.Run("SubscriptionPanic", func(t *testing.T) { t.Parallel(); testSubscriptionPanic(t, b) })
	t.Run("SubscriptionPark", func(t *testing.T) { t.Parallel(); testSubscriptionPark(t, b, false) })
	t.Run("SubscriptionParkPass", func(t *testing.T) { t.Parallel(); testSubscriptionPark(t, b, true) })
	t.Run("SubscriptionOps", func(t *testing.T) { t.Parallel(); testSubscriptionOps(t, b) })
	t.Run("SubscriptionReplayTwice", func(t *testing.T) { t.Parallel(); testReplayTwice(t, b) })
	t.Run("SubscriptionStandby", func(t *testing.T) { t.Parallel(); testSubscriptionStandby(t, b) })
	t.Run("CommitAdvance", func(t *testing.T) { t.Parallel(); testCommitAdvance(t, b) })
	t.Run("SubscriptionIdleLease", func(t *testing.T) { t.Parallel(); testSubscriptionIdleLease(t, b) })
}

// running is a subscription run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

// start runs a subscription until the test ends or stop is called.
func start[TTx any](t *testing.T, s *meowmx.Store[TTx], cfg *meowmx.SubscriptionConfig[TTx]) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.RunSubscription(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
		r.done <- nil
	})
	return r
}

// stop cancels the subscription and returns what RunSubscription returned.
func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err
	return err
}

// wait waits until the subscription caught up.
func wait[TTx any](t *testing.T, s *meowmx.Store[TTx], name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, s.WaitForSubscription(ctx, name))
}

// recorder collects the events a handler saw, in order.
type recorder struct {
	mu  sync.Mutex
	evs []*meowmx.RecordedEvent
}

func (r *recorder) add(evs ...*meowmx.RecordedEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, evs...)
}

func (r *recorder) get() []*meowmx.RecordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*meowmx.RecordedEvent(nil), r.evs...)
}

func handlerOf[TTx any](r *recorder) meowmx.HandlerFunc[TTx] {
	return func(_ context.Context, _ TTx, ev *meowmx.RecordedEvent) error {
		r.add(ev)
		return nil
	}
}

// ledgerType is the aggregate type of a subscription's ledger: the events
// its handler writes, in its transaction, one stream per handled event, so
// that handling an event twice fails (NoStream) and the ledger tells what
// committed.
func ledgerType(sub string) string { return "seen-" + sub }

type seen struct {
	Stream  string `json:"stream"`
	Version int64  `json:"version"`
	Pos     string `json:"pos"`
}

func ledgerHandler[TTx any](s *meowmx.Store[TTx], sub string) meowmx.HandlerFunc[TTx] {
	return func(ctx context.Context, tx TTx, ev *meowmx.RecordedEvent) error {
		data, _ := json.Marshal(seen{Stream: ev.StreamID.String(), Version: ev.Version, Pos: ev.Position.String()})
		_, err := s.AppendTx(ctx, tx, meowmx.StreamID{Type: ledgerType(sub), ID: sub + "-" + ev.Position.String()},
			meowmx.NoStream, meowmx.EventData{Type: "Seen", Data: data})
		return err
	}
}

// ledger reads what a subscription's ledger handler committed, in order.
func ledger[TTx any](t *testing.T, s *meowmx.Store[TTx], sub string) []seen {
	t.Helper()
	settle(t, s)
	var out []seen
	for e, err := range s.IterAll(context.Background(), &meowmx.ReadAllOpts{AggregateTypes: []string{ledgerType(sub)}}) {
		require.NoError(t, err)
		var v seen
		require.NoError(t, json.Unmarshal(e.Data, &v))
		out = append(out, v)
	}
	return out
}

// checkOnceInOrder checks that got holds each of want exactly once, and
// each stream's events in increasing versions.
func checkOnceInOrder(t *testing.T, want []*meowmx.RecordedEvent, got []seen) {
	t.Helper()
	wantSet := map[string]bool{}
	for _, e := range want {
		wantSet[e.Position.String()] = true
	}
	gotSet := map[string]bool{}
	last := map[string]int64{}
	for _, g := range got {
		if !wantSet[g.Pos] {
			continue
		}
		require.False(t, gotSet[g.Pos], "event %s handled twice", g.Pos)
		gotSet[g.Pos] = true
		if v, ok := last[g.Stream]; ok {
			require.Greater(t, g.Version, v, "stream %s out of order", g.Stream)
		}
		last[g.Stream] = g.Version
	}
	if len(gotSet) != len(wantSet) {
		var missed []string
		for p := range wantSet {
			if !gotSet[p] && len(missed) < 10 {
				missed = append(missed, p)
			}
		}
		require.Failf(t, "events missed", "%d of %d events missed, such as %v", len(wantSet)-len(gotSet), len(wantSet), missed)
	}
}

func seenOf(evs []*meowmx.RecordedEvent) []seen {
	out := make([]seen, len(evs))
	for i, e := range evs {
		out[i] = seen{Stream: e.StreamID.String(), Version: e.Version, Pos: e.Position.String()}
	}
	return out
}

// allOf reads every event of some types (all types when none given).
func allOf[TTx any](t *testing.T, s *meowmx.Store[TTx], types ...string) []*meowmx.RecordedEvent {
	t.Helper()
	settle(t, s)
	var out []*meowmx.RecordedEvent
	for e, err := range s.IterAll(context.Background(), &meowmx.ReadAllOpts{AggregateTypes: types}) {
		require.NoError(t, err)
		if e.StreamID.Type != settleType {
			out = append(out, e)
		}
	}
	return out
}

func testSubscriptionBasics[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	for i := range 5 {
		_, err := s.Append(ctx, cat(fmt.Sprint("c", i)), meowmx.NoStream, ev("Born", `{}`), ev("Meowed", `{}`))
		require.NoError(t, err)
		_, err = s.Append(ctx, meowmx.StreamID{Type: "dog", ID: fmt.Sprint("d", i)}, meowmx.NoStream, ev("Born", `{}`))
		require.NoError(t, err)
	}
	var rec recorder
	cfg := &meowmx.SubscriptionConfig[TTx]{Name: "cats", AggregateTypes: []string{"cat"},
		Handler: handlerOf[TTx](&rec), BatchSize: 3, PollInterval: 10 * time.Millisecond}
	r := start(t, s, cfg)
	wait(t, s, "cats")
	require.Equal(t, seenOf(allOf(t, s, "cat")), seenOf(rec.get()))
	require.NoError(t, r.stop(), "a cancelled subscription returns nil")

	// A restart continues after the last handled event.
	_, err := s.Append(ctx, cat("c0"), meowmx.Exact(1), ev("Slept", `{}`))
	require.NoError(t, err)
	var rec2 recorder
	cfg.Handler = handlerOf[TTx](&rec2)
	start(t, b.Reopen(t, s), cfg)
	wait(t, s, "cats")
	got := rec2.get()
	require.Len(t, got, 1)
	require.Equal(t, "Slept", got[0].Type)

	// New events are delivered while it runs.
	_, err = s.Append(ctx, cat("c9"), meowmx.NoStream, ev("Born", `{}`))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(rec2.get()) == 2 }, 30*time.Second, time.Millisecond)
}

func testSubscriptionStartFrom[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	res, err := s.Append(ctx, cat("a"), meowmx.NoStream, ev("One", `1`), ev("Two", `2`), ev("Three", `3`))
	require.NoError(t, err)
	settle(t, s)

	var end, after recorder
	start(t, s, &meowmx.SubscriptionConfig[TTx]{Name: "end", AggregateTypes: []string{"cat"},
		StartFrom: meowmx.StartFrom{End: true}, Handler: handlerOf[TTx](&end)})
	start(t, s, &meowmx.SubscriptionConfig[TTx]{Name: "after", AggregateTypes: []string{"cat"},
		StartFrom: meowmx.StartFrom{After: res.Events[0].Position}, Handler: handlerOf[TTx](&after)})
	wait(t, s, "end")
	wait(t, s, "after")
	_, err = s.Append(ctx, cat("a"), meowmx.Exact(2), ev("Four", `4`))
	require.NoError(t, err)
	wait(t, s, "end")
	wait(t, s, "after")
	types := func(evs []*meowmx.RecordedEvent) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.Type)
		}
		return out
	}
	require.Equal(t, []string{"Four"}, types(end.get()))
	require.Equal(t, []string{"Two", "Three", "Four"}, types(after.get()))
}

func testSubscriptionBadConfig[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	h := meowmx.HandlerFunc[TTx](func(context.Context, TTx, *meowmx.RecordedEvent) error { return nil })
	for name, cfg := range map[string]*meowmx.SubscriptionConfig[TTx]{
		"nil":        nil,
		"no name":    {Handler: h},
		"no handler": {Name: "x"},
		"both handlers": {Name: "x", Handler: h, BatchHandler: meowmx.BatchHandlerFunc[TTx](
			func(context.Context, TTx, []*meowmx.RecordedEvent) error { return nil })},
		"negative batch": {Name: "x", Handler: h, BatchSize: -1},
		"bad policy":     {Name: "x", Handler: h, OnFailure: 7},
		"poll order":     {Name: "x", Handler: h, PollInterval: time.Second, MaxPollInterval: time.Millisecond},
		"start both":     {Name: "x", Handler: h, StartFrom: meowmx.StartFrom{End: true, After: meowmx.Position{EventID: 1}}},
		"empty type":     {Name: "x", Handler: h, AggregateTypes: []string{""}},
	} {
		err := s.RunSubscription(ctx, cfg)
		require.ErrorIs(t, err, meowmx.ErrInvalidArgument, name)
	}
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Empty(t, subs, "a refused config creates nothing")
}

// testSubscriptionStress: writers commit out of order (a transaction that
// started earlier commits later); every subscription sees every event
// exactly once, and each stream in order.
func testSubscriptionStress[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	var all recorder
	subs := []*meowmx.SubscriptionConfig[TTx]{
		{Name: "all", BatchHandler: meowmx.BatchHandlerFunc[TTx](func(_ context.Context, _ TTx, evs []*meowmx.RecordedEvent) error {
			all.add(evs...)
			return nil
		}), PollInterval: 50 * time.Millisecond},
		{Name: "pets", AggregateTypes: []string{"cat", "dog"}, Handler: ledgerHandler(s, "pets"), CheckpointEvery: 1},
		{Name: "ticks", EventTypes: []string{"Tick"}, Handler: ledgerHandler(s, "ticks"), BatchSize: 7},
		{Name: "birds", AggregateTypes: []string{"bird"}, Handler: ledgerHandler(s, "birds"), BatchSize: 50},
	}
	for _, c := range subs {
		start(t, s, c)
	}

	const writers, txs = 8, 30
	types := []string{"cat", "dog", "bird"}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range txs {
				if err := stressTx(ctx, s, types[(w+i)%3], fmt.Sprint("s", (w*txs+i)%12)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	for _, c := range subs {
		wait(t, s, c.Name)
	}
	evs := allOf(t, s)
	var stress, ticks, pets, birds []*meowmx.RecordedEvent
	for _, e := range evs {
		switch e.StreamID.Type {
		case "cat", "dog":
			pets = append(pets, e)
		case "bird":
			birds = append(birds, e)
		default:
			continue
		}
		stress = append(stress, e)
		if e.Type == "Tick" {
			ticks = append(ticks, e)
		}
	}
	require.Len(t, stress, writers*txs*2)
	checkOnceInOrder(t, stress, seenOf(all.get()))
	checkOnceInOrder(t, pets, ledger(t, s, "pets"))
	checkOnceInOrder(t, ticks, ledger(t, s, "ticks"))
	checkOnceInOrder(t, birds, ledger(t, s, "birds"))
}

// stressTx appends two events in a transaction and waits a random time
// before committing it, retrying on conflicts.
func stressTx[TTx any](ctx context.Context, s *meowmx.Store[TTx], typ, id string) error {
	for {
		etx, err := s.Driver().Begin(ctx)
		if err != nil {
			return err
		}
		tx := s.Driver().UnwrapTx(etx)
		_, err = s.AppendTx(ctx, tx, meowmx.StreamID{Type: typ, ID: typ + "-" + id}, meowmx.AnyVersion,
			ev("Tick", `{}`), ev("Tock", `{}`))
		if err == nil {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			err = etx.Commit(ctx)
		}
		if err == nil {
			return nil
		}
		_ = etx.Rollback(ctx)
		if !errors.Is(err, meowmx.ErrConcurrency) && !retryable(err) {
			return err
		}
	}
}

// retryable tells whether an error is a serialization conflict or lock
// contention that a retry resolves.
func retryable(err error) bool {
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) {
		switch coded.SQLState() {
		case "40001", "40P01":
			return true
		}
	}
	return false
}

func testSubscriptionStop[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	res, err := s.Append(ctx, cat("a"), meowmx.NoStream, ev("Fine", `1`), ev("Bad", `2`), ev("Fine", `3`))
	require.NoError(t, err)
	boom := errors.New("boom")
	var rec recorder
	attempts := 0
	err = s.RunSubscription(ctx, &meowmx.SubscriptionConfig[TTx]{Name: "stop", AggregateTypes: []string{"cat"},
		MaxAttempts: 3, RetryBackoff: time.Millisecond,
		Handler: meowmx.HandlerFunc[TTx](func(_ context.Context, _ TTx, e *meowmx.RecordedEvent) error {
			if e.Type == "Bad" {
				attempts++
				return boom
			}
			rec.add(e)
			return nil
		})})
	var he *meowmx.HandlerError
	require.ErrorAs(t, err, &he)
	require.ErrorIs(t, err, meowmx.ErrHandler)
	require.ErrorIs(t, err, boom)
	require.Equal(t, 3, he.Attempts)
	require.Equal(t, 3, attempts)
	require.Equal(t, res.Events[1].Position, he.Position)
	require.Len(t, rec.get(), 2, "the event before was handled twice: once in the failed batch, once alone")
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, res.Events[0].Position, subs[0].Position, "the checkpoint stays before the failing event")
	require.EqualValues(t, 2, subs[0].Lag)
}

func testSubscriptionPanic[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	_, err := s.Append(ctx, cat("a"), meowmx.NoStream, ev("Born", `1`))
	require.NoError(t, err)
	err = s.RunSubscription(ctx, &meowmx.SubscriptionConfig[TTx]{Name: "panic", MaxAttempts: 1,
		BatchHandler: meowmx.BatchHandlerFunc[TTx](func(context.Context, TTx, []*meowmx.RecordedEvent) error {
			panic("oops")
		})})
	var pe *meowmx.PanicError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "oops", pe.Value)
	require.NotEmpty(t, pe.Stack)
}

// testSubscriptionPark: a failing event is parked, later events of its
// stream wait behind it (or pass it), other streams go on, and a replay
// restores the order.
func testSubscriptionPark[TTx any](t *testing.T, b Backend[TTx], pass bool) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	name := "park"
	var mu sync.Mutex
	failing := true
	cfg := &meowmx.SubscriptionConfig[TTx]{Name: name, AggregateTypes: []string{"cat"}, OnFailure: meowmx.FailurePark,
		PassParked: pass, MaxAttempts: 2, RetryBackoff: time.Millisecond, PollInterval: 10 * time.Millisecond}
	inner := ledgerHandler(s, name)
	cfg.Handler = meowmx.HandlerFunc[TTx](func(ctx context.Context, tx TTx, e *meowmx.RecordedEvent) error {
		mu.Lock()
		f := failing
		mu.Unlock()
		if f && e.Type == "Bad" {
			return errors.New("bad event")
		}
		return inner(ctx, tx, e)
	})
	_, err := s.Append(ctx, cat("a"), meowmx.NoStream, ev("Good", `0`), ev("Bad", `1`), ev("Good", `2`))
	require.NoError(t, err)
	_, err = s.Append(ctx, cat("b"), meowmx.NoStream, ev("Good", `0`))
	require.NoError(t, err)
	_, err = s.Append(ctx, cat("a"), meowmx.Exact(2), ev("Good", `3`))
	require.NoError(t, err)
	start(t, s, cfg)
	wait(t, s, name)

	parked, err := s.ParkedEvents(ctx, name)
	require.NoError(t, err)
	handled := ledger(t, s, name)
	if pass {
		require.Len(t, parked, 1)
		require.Len(t, handled, 4)
	} else {
		require.Len(t, parked, 3, "the events behind the bad one wait")
		require.Contains(t, parked[1].Error, "waits behind")
		require.Len(t, handled, 2)
	}
	require.Equal(t, "Bad", parked[0].Event.Type)
	require.Equal(t, "bad event", parked[0].Error)
	require.Equal(t, 2, parked[0].Attempts)
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(parked), subs[0].Parked)
	require.Zero(t, subs[0].Lag, "parked events are behind the checkpoint")

	// A replay that fails again keeps them parked, in order.
	n, err := s.ReplayParked(ctx, name, nil)
	require.NoError(t, err)
	require.Equal(t, len(parked), n)
	wait(t, s, name)
	again, err := s.ParkedEvents(ctx, name)
	require.NoError(t, err)
	require.Len(t, again, len(parked))
	require.Equal(t, 4, again[0].Attempts)

	// Fixed: the replay hands them over in order.
	mu.Lock()
	failing = false
	mu.Unlock()
	_, err = s.ReplayParked(ctx, name, nil)
	require.NoError(t, err)
	wait(t, s, name)
	parked, err = s.ParkedEvents(ctx, name)
	require.NoError(t, err)
	require.Empty(t, parked)

	// Later events of the stream go straight through again.
	_, err = s.Append(ctx, cat("a"), meowmx.Exact(3), ev("Good", `4`))
	require.NoError(t, err)
	wait(t, s, name)
	handled = ledger(t, s, name)
	var versions []int64
	for _, h := range handled {
		if h.Stream == "cat/a" {
			versions = append(versions, h.Version)
		}
	}
	if pass {
		require.Equal(t, []int64{0, 2, 3, 1, 4}, versions)
	} else {
		require.Equal(t, []int64{0, 1, 2, 3, 4}, versions, "replay restores the stream's order")
	}
}

func testSubscriptionOps[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	res, err := s.Append(ctx, cat("a"), meowmx.NoStream, ev("One", `1`), ev("Two", `2`), ev("Three", `3`))
	require.NoError(t, err)
	_, err = s.Append(ctx, meowmx.StreamID{Type: "dog", ID: "d"}, meowmx.NoStream, ev("Woof", `1`))
	require.NoError(t, err)
	var rec recorder
	r := start(t, s, &meowmx.SubscriptionConfig[TTx]{Name: "ops", AggregateTypes: []string{"cat"},
		Handler: handlerOf[TTx](&rec), PollInterval: 10 * time.Millisecond})
	wait(t, s, "ops")
	require.Len(t, rec.get(), 3)

	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, "ops", subs[0].Name)
	require.Equal(t, res.Events[2].Position, subs[0].Position)
	require.Equal(t, []string{"cat"}, subs[0].AggregateTypes)
	require.Zero(t, subs[0].Lag)
	require.False(t, subs[0].Ahead)

	// Rewind while it runs: the events after the position come again.
	require.NoError(t, s.ResetSubscription(ctx, "ops", res.Events[0].Position))
	require.Eventually(t, func() bool { return len(rec.get()) == 5 }, 30*time.Second, time.Millisecond)
	require.Equal(t, []string{"One", "Two", "Three", "Two", "Three"}, func() []string {
		var out []string
		for _, e := range rec.get() {
			out = append(out, e.Type)
		}
		return out
	}())

	require.ErrorIs(t, s.ResetSubscription(ctx, "nope", meowmx.Position{}), meowmx.ErrSubscriptionNotFound)
	require.ErrorIs(t, s.DeleteSubscription(ctx, "nope"), meowmx.ErrSubscriptionNotFound)
	require.ErrorIs(t, s.ResetSubscription(ctx, "", meowmx.Position{}), meowmx.ErrInvalidArgument)
	require.ErrorIs(t, s.ResetSubscription(ctx, "ops", meowmx.Position{TransactionID: 1 << 60, EventID: 1}), meowmx.ErrInvalidArgument,
		"a position after the last event is refused")

	// Deleting it stops its worker.
	require.NoError(t, s.DeleteSubscription(ctx, "ops"))
	select {
	case err := <-r.done:
		r.done <- err
		require.ErrorIs(t, err, meowmx.ErrSubscriptionNotFound)
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop after its subscription was deleted")
	}
	subs, err = s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Empty(t, subs)
}

// testSubscriptionStandby: two workers run one subscription; one owns it,
// the other takes over when the owner stops in the middle of a batch, and
// the transactional handler commits every event exactly once.
func testSubscriptionStandby[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	const n = 60
	for i := range n {
		_, err := s.Append(ctx, cat(fmt.Sprint("c", i%7)), meowmx.AnyVersion, ev("Born", `{}`))
		require.NoError(t, err)
	}
	name := "standby"
	inner := ledgerHandler(s, name)
	var mu sync.Mutex
	handled := map[int]int{} // per worker
	mk := func(w int, slow chan struct{}) *meowmx.SubscriptionConfig[TTx] {
		return &meowmx.SubscriptionConfig[TTx]{Name: name, AggregateTypes: []string{"cat"}, BatchSize: 10,
			LockInterval: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond,
			Handler: meowmx.HandlerFunc[TTx](func(ctx context.Context, tx TTx, e *meowmx.RecordedEvent) error {
				mu.Lock()
				handled[w]++
				k := handled[w]
				mu.Unlock()
				if slow != nil && k == 25 {
					close(slow) // in the middle of its third batch
					<-ctx.Done()
					return ctx.Err()
				}
				return inner(ctx, tx, e)
			})}
	}
	slow := make(chan struct{})
	owner := start(t, s, mk(1, slow))
	<-slow
	standby := start(t, b.Reopen(t, s), mk(2, nil))
	require.NoError(t, owner.stop())
	wait(t, s, name)
	require.NoError(t, standby.stop())
	parked, err := s.ParkedEvents(ctx, name)
	require.NoError(t, err)
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	// Once (2026-12-03) under a full suite's load: 40 of 60 events
	// missing from the ledger, not reproduced since. Say what the workers
	// saw, should it recur.
	for _, sub := range subs {
		t.Logf("subscription %s at %s, lag %d", sub.Name, sub.Position, sub.Lag)
	}
	t.Logf("handled: owner %d, standby %d; parked %d", handled[1], handled[2], len(parked))
	checkOnceInOrder(t, allOf(t, s, "cat"), ledger(t, s, name))
	require.Positive(t, handled[2], "the standby took over")
}

// testCommitAdvance checks the driver's CommitAdvance, through which every
// handler transaction commits: fenced on the old checkpoint, it commits the
// transaction's writes with the checkpoint or neither, whether or not the
// transaction was used.
func testCommitAdvance[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	d := s.Driver()
	_, err := d.Executor().SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{Name: "ca"})
	require.NoError(t, err)
	checkpoint := func() meowmx.Position {
		row, err := d.Executor().SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: "ca"})
		require.NoError(t, err)
		return row.Position
	}
	at := func(tx uint64, id int64) meowmx.Position {
		return meowmx.Position{TransactionID: tx, EventID: id}
	}
	advance := func(used bool, from, to meowmx.Position, id string) (bool, error) {
		etx, err := d.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = etx.Rollback(ctx) }()
		if used {
			_, err := s.AppendTx(ctx, d.UnwrapTx(etx), cat(id), meowmx.NoStream, ev("Written", `{}`))
			require.NoError(t, err)
		}
		return etx.SubscriptionCommit(ctx, &meowmxdriver.SubscriptionCommitParams{Name: "ca", From: from, To: to, Async: true})
	}
	exists := func(id string) bool {
		evs, err := s.ReadStream(ctx, cat(id).ID, nil)
		require.NoError(t, err)
		return len(evs) > 0
	}

	for _, used := range []bool{false, true} {
		t.Run(fmt.Sprint("used=", used), func(t *testing.T) {
			from := checkpoint()
			to := at(from.TransactionID, from.EventID+10)
			id := fmt.Sprint("ca-fenced-", used)
			ok, err := advance(used, at(from.TransactionID, from.EventID+1), to, id)
			require.NoError(t, err)
			require.False(t, ok, "fenced: the checkpoint is not at From")
			require.Equal(t, from, checkpoint(), "a fenced advance changes nothing")
			require.False(t, exists(id), "a fenced advance rolls the transaction's writes back")

			id = fmt.Sprint("ca-", used)
			ok, err = advance(used, from, to, id)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, to, checkpoint())
			require.Equal(t, used, exists(id), "the transaction's writes commit with the checkpoint")
		})
	}

	t.Run("ended", func(t *testing.T) {
		etx, err := d.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = etx.Rollback(ctx) }()
		_, err = s.AppendTx(ctx, d.UnwrapTx(etx), cat("ca-ended"), meowmx.NoStream, ev("Written", `{}`))
		require.NoError(t, err)
		require.NoError(t, etx.Commit(ctx))
		from := checkpoint()
		_, err = etx.SubscriptionCommit(ctx, &meowmxdriver.SubscriptionCommitParams{Name: "ca", From: from, To: at(from.TransactionID, from.EventID+1)})
		require.Error(t, err, "a transaction that has ended cannot advance a checkpoint")
		require.Equal(t, from, checkpoint())
	})
}

// testSubscriptionIdleLease: an owner with nothing to do keeps its lease,
// even when its poll back-off grows past the lease's timeout.
func testSubscriptionIdleLease[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	var rec recorder
	start(t, s, &meowmx.SubscriptionConfig[TTx]{Name: "idle", Handler: handlerOf[TTx](&rec),
		LockInterval: 50 * time.Millisecond, LeaseTimeout: 3 * time.Second,
		PollInterval: 50 * time.Millisecond, MaxPollInterval: time.Minute})
	wait(t, s, "idle")
	var first string
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		subs, err := s.Subscriptions(ctx)
		require.NoError(t, err)
		if first == "" && subs[0].Owner != nil {
			first = subs[0].Owner.ID
		}
		if first != "" {
			require.NotNil(t, subs[0].Owner, "the idle owner's lease lapsed")
			require.Equal(t, first, subs[0].Owner.ID)
		}
	}
	require.NotEmpty(t, first)
}
