package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxdriver"
)

// The order aggregate of the aggregate tests.

type orderPlaced struct {
	Customer   string `json:"customer"`
	TotalCents int    `json:"total_cents"`
}

type orderConfirmed struct{}

type orderShipped struct {
	Carrier string `json:"carrier"`
}

type itemAdded struct {
	N int `json:"n"`
}

type order struct {
	Customer   string
	TotalCents int
	Status     string
	Items      int
	Carrier    string
}

func (o *order) Apply(ev any) error {
	switch e := ev.(type) {
	case orderPlaced:
		o.Customer, o.TotalCents, o.Status = e.Customer, e.TotalCents, "placed"
	case orderConfirmed:
		o.Status = "confirmed"
	case orderShipped:
		o.Status, o.Carrier = "shipped", e.Carrier
	case itemAdded:
		o.Items += e.N
	default:
		return fmt.Errorf("order: unexpected event %T", ev)
	}
	return nil
}

// orderRenamed is order after a struct change: Items became Count.
type orderRenamed struct {
	Customer   string
	TotalCents int
	Status     string
	Count      int
	Carrier    string
}

func (o *orderRenamed) Apply(ev any) error {
	if e, ok := ev.(itemAdded); ok {
		o.Count += e.N
		return nil
	}
	return fmt.Errorf("orderRenamed: unexpected event %T", ev)
}

func orderRegistry(t *testing.T) *meowmx.Registry {
	t.Helper()
	r := meowmx.NewRegistry()
	require.NoError(t, meowmx.RegisterEvent[orderPlaced](r, "OrderPlaced"))
	require.NoError(t, meowmx.RegisterEvent[orderConfirmed](r, "OrderConfirmed"))
	require.NoError(t, meowmx.RegisterEvent[orderShipped](r, "OrderShipped"))
	require.NoError(t, meowmx.RegisterEvent[itemAdded](r, "ItemAdded"))
	return r
}

func orderRepo[TTx any](t *testing.T, s *meowmx.Store[TTx], reg *meowmx.Registry, cfg *meowmx.RepositoryConfig) *meowmx.Repository[order, TTx] {
	t.Helper()
	if reg == nil {
		reg = orderRegistry(t)
	}
	r, err := meowmx.NewRepository[order](s, "order", reg, cfg)
	require.NoError(t, err)
	return r
}

func addItems(n int) func(*meowmx.Aggregate[order]) error {
	return func(a *meowmx.Aggregate[order]) error { return a.Emit(itemAdded{N: n}) }
}

func testAggregate[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	repo := orderRepo(t, s, nil, nil)

	a := repo.New("o-1")
	require.Equal(t, int64(-1), a.Version())
	require.NoError(t, a.Emit(orderPlaced{Customer: "ann", TotalCents: 1250}, &itemAdded{N: 2}))
	require.Equal(t, int64(1), a.Version())
	require.Equal(t, meowmx.NoStream, a.ExpectedVersion())
	require.Equal(t, []any{orderPlaced{Customer: "ann", TotalCents: 1250}, itemAdded{N: 2}}, a.Pending(), "a *E is recorded as an E")
	require.Equal(t, order{Customer: "ann", TotalCents: 1250, Status: "placed", Items: 2}, a.State)

	err := a.Emit(struct{ X int }{1})
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument, "unregistered event type")
	require.Len(t, a.Pending(), 2, "a refused event is not recorded")

	// A save whose response is lost is retried without writing twice.
	lost := *a
	require.NoError(t, repo.Save(ctx, a))
	require.Empty(t, a.Pending())
	require.Equal(t, meowmx.Exact(1), a.ExpectedVersion())
	require.NoError(t, repo.Save(ctx, a), "nothing pending: nothing to do")
	require.NoError(t, repo.Save(ctx, &lost))
	evs, err := s.ReadStream(ctx, "o-1", nil)
	require.NoError(t, err)
	require.Len(t, evs, 2)
	require.Equal(t, "OrderPlaced", evs[0].Type)
	require.JSONEq(t, `{"customer":"ann","total_cents":1250}`, string(evs[0].Data))

	got, err := repo.Load(ctx, "o-1", nil)
	require.NoError(t, err)
	require.Equal(t, a.State, got.State)
	require.Equal(t, int64(1), got.Version())
	require.Equal(t, meowmx.Exact(1), got.ExpectedVersion())

	// Two writers loaded version 1; the second to save loses.
	stale, err := repo.Load(ctx, "o-1", nil)
	require.NoError(t, err)
	require.NoError(t, got.Emit(orderConfirmed{}))
	require.NoError(t, repo.Save(ctx, got))
	require.NoError(t, stale.Emit(orderShipped{Carrier: "DHL"}))
	err = repo.Save(ctx, stale)
	require.ErrorIs(t, err, meowmx.ErrConcurrency)
	var ce *meowmx.ConcurrencyError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, int64(2), ce.Actual)
	require.Len(t, stale.Pending(), 1, "a refused save keeps the events pending")
	require.Equal(t, meowmx.Exact(1), stale.ExpectedVersion())

	// As of a version.
	old, err := repo.Load(ctx, "o-1", &meowmx.LoadOpts{Version: new(int64(0))})
	require.NoError(t, err)
	require.Equal(t, order{Customer: "ann", TotalCents: 1250, Status: "placed"}, old.State)
	require.Equal(t, int64(0), old.Version())
	all, err := repo.Load(ctx, "o-1", &meowmx.LoadOpts{Version: new(int64(99))})
	require.NoError(t, err)
	require.Equal(t, int64(2), all.Version(), "a stream with fewer events loads whole")
	require.NoError(t, all.Emit(orderShipped{Carrier: "UPS"}))
	require.NoError(t, repo.Save(ctx, all))
	_, err = repo.Load(ctx, "o-1", &meowmx.LoadOpts{Version: new(int64(-1))})
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)

	_, err = repo.Load(ctx, "nobody", nil)
	require.ErrorIs(t, err, meowmx.ErrStreamNotFound)
	_, err = repo.Load(ctx, "", nil)
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument)

	// A new aggregate whose stream exists.
	dup := repo.New("o-1")
	require.NoError(t, dup.Emit(orderPlaced{Customer: "bob"}))
	require.ErrorIs(t, repo.Save(ctx, dup), meowmx.ErrConcurrency)

	// Another aggregate type.
	_, err = s.Append(ctx, cat("tom"), meowmx.NoStream, ev("ItemAdded", `{"n":1}`))
	require.NoError(t, err)
	_, err = repo.Load(ctx, "tom", nil)
	require.ErrorIs(t, err, meowmx.ErrAggregateTypeMismatch)
	tom := repo.New("tom")
	require.NoError(t, tom.Emit(itemAdded{N: 1}))
	require.ErrorIs(t, repo.Save(ctx, tom), meowmx.ErrAggregateTypeMismatch)

	// An aggregate of another repository.
	other := orderRepo(t, s, nil, nil)
	require.ErrorIs(t, other.Save(ctx, all), meowmx.ErrInvalidArgument)
	require.ErrorIs(t, repo.Save(ctx, nil), meowmx.ErrInvalidArgument)

	// Events that do not decode.
	_, err = s.Append(ctx, meowmx.StreamID{Type: "order", ID: "o-bad"}, meowmx.NoStream, ev("ItemAdded", `{"n":"three"}`))
	require.NoError(t, err)
	_, err = repo.Load(ctx, "o-bad", nil)
	require.ErrorContains(t, err, "o-bad")
	require.NotErrorIs(t, err, meowmx.ErrUnknownEventType)

	// Bad configuration.
	reg := orderRegistry(t)
	for _, tc := range []struct {
		typ string
		reg *meowmx.Registry
		cfg *meowmx.RepositoryConfig
		arg string
	}{
		{"", reg, nil, "aggregate type"},
		{"order", nil, nil, "registry"},
		{"order", reg, &meowmx.RepositoryConfig{MaxAttempts: -1}, "RepositoryConfig.MaxAttempts"},
		{"order", reg, &meowmx.RepositoryConfig{SnapshotEvery: -1}, "RepositoryConfig.SnapshotEvery"},
		{"order", reg, &meowmx.RepositoryConfig{SnapshotVersion: -1}, "RepositoryConfig.SnapshotVersion"},
	} {
		_, err := meowmx.NewRepository[order](s, tc.typ, tc.reg, tc.cfg)
		require.ErrorIs(t, err, meowmx.ErrInvalidArgument, tc.arg)
		var ae *meowmx.ArgumentError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, tc.arg, ae.Arg)
	}
	_, err = meowmx.NewRepository[hiddenState](s, "order", reg, &meowmx.RepositoryConfig{SnapshotEvery: 10})
	require.ErrorIs(t, err, meowmx.ErrInvalidArgument, "an unexported field cannot be snapshotted")
	require.ErrorContains(t, err, "hiddenState.items")
	_, err = meowmx.NewRepository[hiddenState](s, "order", reg, nil)
	require.NoError(t, err, "without snapshots, any state will do")
}

type hiddenState struct {
	Status string
	items  int
}

func (h *hiddenState) Apply(ev any) error {
	if e, ok := ev.(itemAdded); ok {
		h.items += e.N
	}
	return nil
}

func testAggregateUpdate[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)

	t.Run("Race", func(t *testing.T) {
		t.Parallel()
		const workers, rounds = 16, 5
		repo := orderRepo(t, s, nil, &meowmx.RepositoryConfig{MaxAttempts: 10 * workers * rounds})
		var calls atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for range workers {
			wg.Go(func() {
				for range rounds {
					_, err := repo.Update(ctx, "counted", func(a *meowmx.Aggregate[order]) error {
						calls.Add(1)
						return a.Emit(itemAdded{N: 1})
					})
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		got, err := repo.Load(ctx, "counted", nil)
		require.NoError(t, err)
		require.Equal(t, workers*rounds, got.State.Items, "no update is lost")
		require.Equal(t, int64(workers*rounds-1), got.Version())
		t.Logf("%d decisions for %d updates", calls.Load(), workers*rounds)
	})

	t.Run("Exhausted", func(t *testing.T) {
		t.Parallel()
		repo := orderRepo(t, s, nil, &meowmx.RepositoryConfig{MaxAttempts: 3})
		calls := 0
		_, err := repo.Update(ctx, "contended", func(a *meowmx.Aggregate[order]) error {
			calls++
			// Another writer gets there first, every time.
			_, err := s.Append(ctx, meowmx.StreamID{Type: "order", ID: "contended"}, meowmx.AnyVersion, ev("ItemAdded", `{"n":10}`))
			require.NoError(t, err)
			return a.Emit(itemAdded{N: 1})
		})
		require.ErrorIs(t, err, meowmx.ErrRetriesExhausted)
		require.ErrorIs(t, err, meowmx.ErrConcurrency)
		var re *meowmx.RetriesExhaustedError
		require.ErrorAs(t, err, &re)
		require.Equal(t, 3, re.Attempts)
		require.Equal(t, "contended", re.ID)
		require.Equal(t, 3, calls)
		got, err := repo.Load(ctx, "contended", nil)
		require.NoError(t, err)
		require.Equal(t, 30, got.State.Items, "only the other writer's events")
	})

	t.Run("DecideError", func(t *testing.T) {
		t.Parallel()
		repo := orderRepo(t, s, nil, nil)
		a, err := repo.Update(ctx, "decided", addItems(1))
		require.NoError(t, err)
		require.Equal(t, int64(0), a.Version())
		errNo := errors.New("no")
		_, err = repo.Update(ctx, "decided", func(a *meowmx.Aggregate[order]) error {
			require.NoError(t, a.Emit(itemAdded{N: 5}))
			return errNo
		})
		require.Same(t, errNo, err)
		a, err = repo.Update(ctx, "decided", func(*meowmx.Aggregate[order]) error { return nil })
		require.NoError(t, err, "nothing emitted: nothing saved")
		require.Equal(t, 1, a.State.Items)
		evs, err := s.ReadStream(ctx, "decided", nil)
		require.NoError(t, err)
		require.Len(t, evs, 1)
	})
}

func testAggregateUnknownEvents[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	stream := meowmx.StreamID{Type: "order", ID: "o-gift"}
	_, err := s.Append(ctx, stream, meowmx.NoStream,
		ev("OrderPlaced", `{"customer":"ann","total_cents":100}`),
		ev("GiftWrapped", `{"paper":"red"}`), // a type the code no longer knows
		ev("ItemAdded", `{"n":2}`))
	require.NoError(t, err)

	_, err = orderRepo(t, s, nil, nil).Load(ctx, "o-gift", nil)
	require.ErrorIs(t, err, meowmx.ErrUnknownEventType)
	var ue *meowmx.UnknownEventTypeError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, &meowmx.UnknownEventTypeError{Type: "GiftWrapped", StoredType: "GiftWrapped", Stream: stream, Version: 1}, ue)

	repo := orderRepo(t, s, nil, &meowmx.RepositoryConfig{SkipUnknownEvents: true})
	a, err := repo.Load(ctx, "o-gift", nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), a.Version(), "a skipped event still counts")
	require.Equal(t, order{Customer: "ann", TotalCents: 100, Status: "placed", Items: 2}, a.State)
	require.NoError(t, a.Emit(orderConfirmed{}))
	require.NoError(t, repo.Save(ctx, a))
}

// The shapes of the old code: OrderCreated with a total in dollars, as a
// string, became OrderPlaced in cents; OrderShipped named its carrier
// "via".
type orderCreatedV1 struct {
	Customer string `json:"customer"`
	Total    string `json:"total"`
}

func testAggregateUpcast[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	stream := meowmx.StreamID{Type: "order", ID: "o-old"}
	// Written by the old code.
	_, err := s.Append(ctx, stream, meowmx.NoStream,
		ev("OrderCreated", `{"customer":"ann","total":"12.50"}`),
		ev("OrderShipped", `{"via":"DHL"}`))
	require.NoError(t, err)

	reg := orderRegistry(t)
	require.NoError(t, reg.RegisterUpcaster("OrderCreated", meowmx.UpcastJSON("OrderPlaced",
		func(old orderCreatedV1) (orderPlaced, error) {
			var dollars, cents int
			if _, err := fmt.Sscanf(old.Total, "%d.%d", &dollars, &cents); err != nil {
				return orderPlaced{}, fmt.Errorf("total %q: %w", old.Total, err)
			}
			return orderPlaced{Customer: old.Customer, TotalCents: dollars*100 + cents}, nil
		})))
	require.NoError(t, reg.RegisterUpcaster("OrderShipped", func(data json.RawMessage) (string, json.RawMessage, error) {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return "", nil, err
		}
		if via, ok := m["via"]; ok { // the old shape
			m["carrier"] = via
			delete(m, "via")
		}
		b, err := json.Marshal(m)
		return "OrderShipped", b, err
	}))
	repo := orderRepo(t, s, reg, nil)
	a, err := repo.Load(ctx, "o-old", nil)
	require.NoError(t, err)
	require.Equal(t, order{Customer: "ann", TotalCents: 1250, Status: "shipped", Carrier: "DHL"}, a.State)

	// New events are written in the new shape; a mixed stream reads back.
	require.NoError(t, a.Emit(orderShipped{Carrier: "UPS"}))
	require.NoError(t, repo.Save(ctx, a))
	evs, err := s.ReadStream(ctx, "o-old", nil)
	require.NoError(t, err)
	require.Equal(t, "OrderCreated", evs[0].Type, "upcasting changes what is read, never what is stored")
	require.JSONEq(t, `{"carrier":"UPS"}`, string(evs[2].Data))
	a, err = repo.Load(ctx, "o-old", nil)
	require.NoError(t, err)
	require.Equal(t, "UPS", a.State.Carrier)

	// An upcaster that fails fails the load.
	_, err = s.Append(ctx, meowmx.StreamID{Type: "order", ID: "o-odd"}, meowmx.NoStream, ev("OrderCreated", `{"customer":"bob","total":"lots"}`))
	require.NoError(t, err)
	_, err = repo.Load(ctx, "o-odd", nil)
	require.ErrorContains(t, err, `total "lots"`)
}

func testAggregateLong[TTx any](t *testing.T, b Backend[TTx]) {
	const total, batch = 100_000, 1000
	ctx := context.Background()
	s := b.NewStore(t, nil)
	stream := meowmx.StreamID{Type: "order", ID: "o-long"}
	events := make([]meowmx.EventData, batch)
	for i := range events {
		events[i] = ev("ItemAdded", `{"n":1}`)
	}
	for i := range total / batch {
		_, err := s.Append(ctx, stream, meowmx.Exact(int64(i*batch-1)), events...)
		require.NoError(t, err)
	}
	repo := orderRepo(t, s, nil, nil)
	a, err := repo.Load(ctx, "o-long", nil)
	require.NoError(t, err)
	require.Equal(t, total, a.State.Items, "every event is applied")
	require.Equal(t, int64(total-1), a.Version())
	require.NoError(t, a.Emit(itemAdded{N: 1}))
	require.NoError(t, repo.Save(ctx, a), "the next save is at the right version")

	mid, err := repo.Load(ctx, "o-long", &meowmx.LoadOpts{Version: new(int64(54_320))})
	require.NoError(t, err)
	require.Equal(t, 54_321, mid.State.Items)
}

// snapshotAt returns the latest snapshot of id, nil when none.
func snapshotAt[TTx any](t *testing.T, s *meowmx.Store[TTx], id string) *meowmxdriver.SnapshotRow {
	t.Helper()
	row, err := s.Driver().Executor().SnapshotGetLatest(context.Background(), &meowmxdriver.SnapshotGetLatestParams{AggregateID: id, MaxVersion: -1})
	if errors.Is(err, meowmxdriver.ErrNotFound) {
		return nil
	}
	require.NoError(t, err)
	return row
}

// tamper replaces the latest snapshot's state: a loader that uses it shows
// the wrong state.
func tamper[TTx any](t *testing.T, s *meowmx.Store[TTx], id string, data string) {
	t.Helper()
	row := snapshotAt(t, s, id)
	require.NotNil(t, row)
	row.Data = []byte(data)
	require.NoError(t, s.Driver().Executor().SnapshotSave(context.Background(), row))
}

func testAggregateSnapshots[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	reg := orderRegistry(t)
	cfg := &meowmx.RepositoryConfig{SnapshotEvery: 10}
	repo := orderRepo(t, s, reg, cfg)
	update25 := func(t *testing.T, id string) {
		t.Helper()
		for range 25 {
			_, err := repo.Update(ctx, id, addItems(1))
			require.NoError(t, err)
		}
	}

	t.Run("Every", func(t *testing.T) {
		t.Parallel()
		update25(t, "s-every")
		row := snapshotAt(t, s, "s-every")
		require.NotNil(t, row)
		require.Equal(t, int64(19), row.Version, "snapshots at versions 9 and 19")
		require.Equal(t, "order", row.AggregateType)
		require.Equal(t, int64(0), row.SnapshotVersion)
		require.JSONEq(t, `{"Customer":"","TotalCents":0,"Status":"","Items":20,"Carrier":""}`, string(row.Data))
		a, err := repo.Load(ctx, "s-every", nil)
		require.NoError(t, err)
		require.Equal(t, 25, a.State.Items)
		require.Equal(t, int64(24), a.Version())

		// A big save writes one snapshot at its end.
		require.NoError(t, a.Emit(itemAdded{N: 1}, itemAdded{N: 1}, itemAdded{N: 1}, itemAdded{N: 1}, itemAdded{N: 1}, itemAdded{N: 1}))
		require.NoError(t, repo.Save(ctx, a))
		require.Equal(t, int64(30), snapshotAt(t, s, "s-every").Version)

		off := orderRepo(t, s, reg, nil)
		_, err = off.Update(ctx, "s-off", addItems(11))
		require.NoError(t, err)
		require.Nil(t, snapshotAt(t, s, "s-off"), "snapshots are off by default")
	})

	t.Run("Used", func(t *testing.T) {
		t.Parallel()
		update25(t, "s-used")
		tamper(t, s, "s-used", `{"Items":1000}`)
		a, err := repo.Load(ctx, "s-used", nil)
		require.NoError(t, err)
		require.Equal(t, 1005, a.State.Items, "loading starts at the snapshot (19) and reads events 20 to 24")
		old, err := repo.Load(ctx, "s-used", &meowmx.LoadOpts{Version: new(int64(15))})
		require.NoError(t, err)
		require.Equal(t, 16, old.State.Items, "as of version 15: the snapshot at 9, then 10 to 15")
		exact, err := repo.Load(ctx, "s-used", &meowmx.LoadOpts{Version: new(int64(19))})
		require.NoError(t, err)
		require.Equal(t, 1000, exact.State.Items)
		require.Equal(t, int64(19), exact.Version())

		off := orderRepo(t, s, reg, nil)
		a, err = off.Load(ctx, "s-used", nil)
		require.NoError(t, err)
		require.Equal(t, 25, a.State.Items, "with snapshots off, none is read")
	})

	t.Run("DoesNotDecode", func(t *testing.T) {
		t.Parallel()
		update25(t, "s-undecodable")
		tamper(t, s, "s-undecodable", `{"Items":"many"}`)
		a, err := repo.Load(ctx, "s-undecodable", nil)
		require.NoError(t, err)
		require.Equal(t, 25, a.State.Items, "full replay")
	})

	t.Run("OlderSnapshotVersion", func(t *testing.T) {
		t.Parallel()
		update25(t, "s-older")
		tamper(t, s, "s-older", `{"Items":1000}`) // would show if used
		v1 := orderRepo(t, s, reg, &meowmx.RepositoryConfig{SnapshotEvery: 10, SnapshotVersion: 1})
		a, err := v1.Load(ctx, "s-older", nil)
		require.NoError(t, err)
		require.Equal(t, 25, a.State.Items, "full replay")
		// The next save writes a snapshot of the new version.
		require.NoError(t, a.Emit(itemAdded{N: 1}))
		require.NoError(t, v1.Save(ctx, a))
		row := snapshotAt(t, s, "s-older")
		require.Equal(t, int64(25), row.Version)
		require.Equal(t, int64(1), row.SnapshotVersion)
		a, err = v1.Load(ctx, "s-older", nil)
		require.NoError(t, err)
		require.Equal(t, 26, a.State.Items)
	})

	t.Run("StructChanged", func(t *testing.T) {
		t.Parallel()
		update25(t, "s-changed")
		// Items was renamed Count: the old snapshot decodes without error
		// into the new struct, with Count 0. It must not be used.
		renamed, err := meowmx.NewRepository[orderRenamed](s, "order", reg, cfg)
		require.NoError(t, err)
		a, err := renamed.Load(ctx, "s-changed", nil)
		require.NoError(t, err)
		require.Equal(t, 25, a.State.Count, "full replay")
		require.NoError(t, a.Emit(itemAdded{N: 1}))
		require.NoError(t, renamed.Save(ctx, a))
		a, err = renamed.Load(ctx, "s-changed", nil)
		require.NoError(t, err)
		require.Equal(t, 26, a.State.Count)
		back, err := repo.Load(ctx, "s-changed", nil)
		require.NoError(t, err)
		require.Equal(t, 26, back.State.Items, "and back")
	})

	t.Run("SaveTx", func(t *testing.T) {
		t.Parallel()
		a := repo.New("s-tx")
		for range 10 {
			require.NoError(t, a.Emit(itemAdded{N: 1}))
		}
		tx, _, rollback := begin(t, s)
		require.NoError(t, repo.SaveTx(ctx, tx, a))
		require.NoError(t, rollback())
		require.Nil(t, snapshotAt(t, s, "s-tx"), "the snapshot rolls back with the events")
		_, err := repo.Load(ctx, "s-tx", nil)
		require.ErrorIs(t, err, meowmx.ErrStreamNotFound)

		a = repo.New("s-tx")
		for range 10 {
			require.NoError(t, a.Emit(itemAdded{N: 1}))
		}
		tx, commit, _ := begin(t, s)
		require.NoError(t, repo.SaveTx(ctx, tx, a))
		loaded, err := repo.LoadTx(ctx, tx, "s-tx", nil)
		require.NoError(t, err)
		require.Equal(t, 10, loaded.State.Items)
		require.NoError(t, commit())
		row := snapshotAt(t, s, "s-tx")
		require.NotNil(t, row)
		require.Equal(t, int64(9), row.Version)
	})

	t.Run("OtherAggregateType", func(t *testing.T) {
		t.Parallel()
		update25(t, "s-type")
		row := snapshotAt(t, s, "s-type")
		row.AggregateType, row.Data = "cat", []byte(`{"Items":1000}`)
		require.NoError(t, s.Driver().Executor().SnapshotSave(ctx, row))
		a, err := repo.Load(ctx, "s-type", nil)
		require.NoError(t, err)
		require.Equal(t, 25, a.State.Items, "full replay")
	})
}
