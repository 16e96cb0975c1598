package meowmx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// Applier is implemented by a pointer to an aggregate's state: Apply
// changes the state by one event, a value of a type registered in the
// Registry (an E, never a *E). It runs when events are loaded and when they
// are emitted, so it must not decide anything: decisions are made before
// Emit, and an event that happened is applied.
type Applier interface {
	Apply(event any) error
}

// Aggregate is the state T of one aggregate, built from its events, with
// the events emitted since it was loaded (pending) and the version to save
// them at. Get one from Repository.Load or Repository.New. An Aggregate is
// not safe for concurrent use.
type Aggregate[T any] struct {
	// State is the aggregate's state: every loaded and emitted event has
	// been applied to it.
	State T

	id       string
	version  int64 // of the last event applied, stored or pending
	stored   int64 // of the last stored event: the expected version of Save
	snapshot int64 // of the snapshot it was loaded from or last wrote; -1: none
	pending  []any
	data     []EventData
	c        *codec[T]
}

// codec is what an Aggregate needs of its Repository.
type codec[T any] struct {
	reg   *Registry
	apply func(*T, any) error
}

// ID returns the aggregate id.
func (a *Aggregate[T]) ID() string { return a.id }

// Version returns the version of the last event applied to State,
// pending ones included: -1 for a new aggregate without events.
func (a *Aggregate[T]) Version() int64 { return a.version }

// ExpectedVersion returns the version that saving the pending events
// expects the stream to be at: the version it was loaded at (or last
// saved at).
func (a *Aggregate[T]) ExpectedVersion() ExpectedVersion { return Exact(a.stored) }

// Pending returns the events emitted and not yet saved, in order.
func (a *Aggregate[T]) Pending() []any { return slices.Clone(a.pending) }

// Emit records new events: each is encoded with the Registry, applied to
// State and kept as pending until Repository.Save. Events may be given as E
// or *E; Apply receives an E. An unregistered event type gets an error
// matching ErrInvalidArgument, and an Apply error is returned as is; the
// failing event and those after it are not recorded, but State may have
// changed: discard the aggregate after an error.
//
// Each event gets a UUID, so that saving again after an error that hid a
// successful save (a lost connection) does not write the events twice.
func (a *Aggregate[T]) Emit(events ...any) error {
	for _, ev := range events {
		data, err := a.c.reg.Encode(ev)
		if err != nil {
			return err
		}
		data.UUID = uuid.New()
		if v := reflect.ValueOf(ev); v.Kind() == reflect.Pointer {
			ev = v.Elem().Interface()
		}
		if err := a.c.apply(&a.State, ev); err != nil {
			return fmt.Errorf("meowmx: apply %s to %s: %w", data.Type, a.id, err)
		}
		a.version++
		a.pending = append(a.pending, ev)
		a.data = append(a.data, data)
	}
	return nil
}

// UpdateMaxAttemptsDefault is the default of RepositoryConfig.MaxAttempts.
const UpdateMaxAttemptsDefault = 10

// RepositoryConfig configures a Repository. The zero value is valid; each
// field's comment gives its default.
type RepositoryConfig struct {
	// MaxAttempts is how many times Repository.Update loads, decides and
	// saves before giving up on version conflicts. Defaults to
	// UpdateMaxAttemptsDefault.
	MaxAttempts int
	// SkipUnknownEvents makes loading skip events whose type the Registry
	// does not know (after upcasting), logging each at Warn level, rather
	// than fail with an error matching ErrUnknownEventType. The aggregate's
	// version still counts them. Defaults to false.
	SkipUnknownEvents bool
	// SnapshotEvery turns snapshots on: after a save that leaves the
	// aggregate N or more events past its latest snapshot (or its first
	// event), its state is stored in the snapshot table (es_aggregate_snapshot
	// on PostgreSQL, es_aggregate_snapshots on SQLite, as the Python client
	// names them), and loading
	// starts from the latest snapshot. The state type must then encode to
	// JSON whole: NewRepository refuses one with unexported or `json:"-"`
	// fields. Defaults to 0: no snapshots are read or written.
	SnapshotEvery int
	// SnapshotVersion is the version of the state's meaning. Snapshots
	// written with another SnapshotVersion are not used: bump it when the
	// way events build the state changes (Apply changed) while the state's
	// fields did not. A change of the state's fields or JSON tags is
	// detected without it. Defaults to 0.
	SnapshotVersion int
	// Logger receives the repository's logs. Defaults to the store's
	// Config.Logger.
	Logger *slog.Logger
}

// Repository loads and saves the aggregates of one aggregate type, whose
// state is a T with an Apply method on *T. It is safe for concurrent use.
type Repository[T any, TTx any] struct {
	store  *Store[TTx]
	typ    string
	cfg    RepositoryConfig
	logger *slog.Logger
	shape  string // stateShape of T, when snapshots are on
	c      *codec[T]
}

// NewRepository returns a repository of aggregates of aggregateType, whose
// state is a T. *T must implement Applier; T is usually given and the rest
// inferred:
//
//	orders, err := meowmx.NewRepository[Order](store, "order", registry, nil)
//
// Bad input gets an error matching ErrInvalidArgument.
func NewRepository[T any, PT interface {
	*T
	Applier
}, TTx any](store *Store[TTx], aggregateType string, registry *Registry, config *RepositoryConfig) (*Repository[T, TTx], error) {
	if store == nil {
		return nil, &ArgumentError{Arg: "store", Reason: "nil"}
	}
	if registry == nil {
		return nil, &ArgumentError{Arg: "registry", Reason: "nil (see NewRegistry)"}
	}
	if err := checkName("aggregate type", aggregateType); err != nil {
		return nil, err
	}
	var cfg RepositoryConfig
	if config != nil {
		cfg = *config
	}
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, UpdateMaxAttemptsDefault)
	for _, f := range []struct {
		name  string
		value int
	}{
		{"MaxAttempts", cfg.MaxAttempts},
		{"SnapshotEvery", cfg.SnapshotEvery},
		{"SnapshotVersion", cfg.SnapshotVersion},
	} {
		if f.value < 0 {
			return nil, &ArgumentError{Arg: "RepositoryConfig." + f.name, Reason: fmt.Sprintf("%d is negative", f.value)}
		}
	}
	r := &Repository[T, TTx]{
		store:  store,
		typ:    aggregateType,
		cfg:    cfg,
		logger: cmp.Or(cfg.Logger, store.config.Logger),
		c: &codec[T]{
			reg:   registry,
			apply: func(t *T, ev any) error { return PT(t).Apply(ev) },
		},
	}
	if cfg.SnapshotEvery > 0 {
		shape, err := stateShape(reflect.TypeFor[T]())
		if err != nil {
			return nil, &ArgumentError{Arg: "RepositoryConfig.SnapshotEvery", Reason: "cannot snapshot the state", Err: err}
		}
		r.shape = shape
	}
	return r, nil
}

// New returns a new aggregate with no events (version -1) and a zero
// state. Saving it creates its stream, and fails with an error matching
// ErrConcurrency if the stream exists already.
func (r *Repository[T, TTx]) New(id string) *Aggregate[T] {
	return &Aggregate[T]{id: id, version: -1, stored: -1, snapshot: -1, c: r.c}
}

// LoadOpts are the options of Repository.Load. Nil means the latest state.
type LoadOpts struct {
	// Version, when not nil, loads the aggregate as it was at this version:
	// with the events up to it. A stream with fewer events loads whole;
	// check Aggregate.Version.
	Version *int64
}

// Load rebuilds an aggregate from its events, every one of them, reading
// Config.PageSize events per query; with snapshots on, it starts from the
// latest usable snapshot at or below the wanted version and reads only the
// newer events.
//
// A stream without events gets an error matching ErrStreamNotFound, one of
// another aggregate type one matching ErrAggregateTypeMismatch, an event of
// an unregistered type one matching ErrUnknownEventType (unless
// RepositoryConfig.SkipUnknownEvents), and an Apply error is wrapped.
func (r *Repository[T, TTx]) Load(ctx context.Context, id string, opts *LoadOpts) (*Aggregate[T], error) {
	return r.load(ctx, r.store.driver.Executor(), id, opts, true)
}

// LoadTx is Load inside the caller's transaction.
func (r *Repository[T, TTx]) LoadTx(ctx context.Context, tx TTx, id string, opts *LoadOpts) (*Aggregate[T], error) {
	return r.load(ctx, r.store.driver.UnwrapExecutor(tx), id, opts, false)
}

// pooled tells that exec is the pool (see Store.iterStream).
func (r *Repository[T, TTx]) load(ctx context.Context, exec meowmxdriver.Executor, id string, opts *LoadOpts, pooled bool) (*Aggregate[T], error) {
	if err := checkName("aggregate id", id); err != nil {
		return nil, err
	}
	maxVersion := int64(-1) // no bound
	read := &ReadStreamOpts{}
	if opts != nil && opts.Version != nil {
		if *opts.Version < 0 {
			return nil, &ArgumentError{Arg: "LoadOpts.Version", Reason: fmt.Sprintf("%d is negative", *opts.Version)}
		}
		maxVersion = *opts.Version
		read.To = &maxVersion
	}
	a := r.New(id)
	if r.cfg.SnapshotEvery > 0 {
		if err := r.restore(ctx, exec, a, maxVersion); err != nil {
			return nil, err
		}
	}
	read.From = a.version + 1
	stream := StreamID{Type: r.typ, ID: id}
	for ev, err := range r.store.iterStream(ctx, exec, id, read, pooled) {
		if err != nil {
			return nil, fmt.Errorf("meowmx: load %s: %w", stream, err)
		}
		if ev.StreamID.Type != r.typ {
			return nil, &AggregateTypeError{ID: id, Type: ev.StreamID.Type, Requested: r.typ}
		}
		if ev.Version != a.version+1 {
			return nil, fmt.Errorf("meowmx: load %s: read version %d after %d", stream, ev.Version, a.version)
		}
		a.version = ev.Version
		v, err := r.c.reg.Decode(ev)
		if err != nil {
			if r.cfg.SkipUnknownEvents && errors.Is(err, ErrUnknownEventType) {
				r.logger.WarnContext(ctx, "meowmx: skipping an event of unknown type", "err", err)
				continue
			}
			return nil, fmt.Errorf("meowmx: load %s: %w", stream, err)
		}
		if err := r.c.apply(&a.State, v); err != nil {
			return nil, fmt.Errorf("meowmx: load %s: apply event %d (%s): %w", stream, ev.Version, ev.Type, err)
		}
	}
	if a.version < 0 {
		return nil, fmt.Errorf("%w: %s", ErrStreamNotFound, stream)
	}
	a.stored = a.version
	return a, nil
}

// Save appends the aggregate's pending events at its expected version, in
// one transaction; it does nothing when none is pending. On success the
// events are no longer pending and the aggregate can emit and save again.
// With snapshots on, it then stores a snapshot when one is due, in a
// statement of its own; a snapshot that fails to save is logged and
// otherwise ignored, as the events are saved.
//
// When the stream moved on since the aggregate was loaded, the error
// matches ErrConcurrency and the aggregate is unchanged: load it again,
// decide again and retry, or let Update do so. Saving an aggregate again
// after an error that hid a successful save writes nothing twice.
func (r *Repository[T, TTx]) Save(ctx context.Context, a *Aggregate[T]) error {
	return r.save(ctx, r.store.driver.Executor(), false, a)
}

// SaveTx is Save inside the caller's transaction, the snapshot included: a
// snapshot that fails to save fails SaveTx. If the transaction then rolls
// back, discard the aggregate: it counts its events as saved.
func (r *Repository[T, TTx]) SaveTx(ctx context.Context, tx TTx, a *Aggregate[T]) error {
	return r.save(ctx, r.store.driver.UnwrapExecutor(tx), true, a)
}

func (r *Repository[T, TTx]) save(ctx context.Context, exec meowmxdriver.Executor, inTx bool, a *Aggregate[T]) error {
	if a == nil || a.c != r.c {
		return &ArgumentError{Arg: "aggregate", Reason: "nil or not made by this repository"}
	}
	if len(a.data) == 0 {
		return nil
	}
	group := r.store.group // Save goes through group commit like Store.Append
	if inTx {
		group = nil
	}
	op := "append"
	if inTx {
		op = "append_tx"
	}
	res, err := r.store.append(ctx, op, exec, group, StreamID{Type: r.typ, ID: a.id}, Exact(a.stored), a.data)
	if err != nil {
		return err
	}
	r.store.notifyAppended(res)
	if r.cfg.SnapshotEvery > 0 && a.version-a.snapshot >= int64(r.cfg.SnapshotEvery) {
		if err := r.saveSnapshot(ctx, exec, a); err != nil {
			if inTx {
				return err
			}
			r.logger.WarnContext(ctx, "meowmx: snapshot not saved; loads replay more events until the next one", "err", err)
		}
	}
	a.stored, a.pending, a.data = a.version, nil, nil
	return nil
}

// Update loads an aggregate (a new one when its stream has no events),
// runs decide on it, and saves the events decide emitted. When another
// writer saved first, it loads again and runs decide again, up to
// RepositoryConfig.MaxAttempts times, then gives up with a
// *RetriesExhaustedError (matching ErrRetriesExhausted and
// ErrConcurrency). decide may thus run several times: it must have no
// effect beyond the aggregate. An error of decide is returned as is, and
// nothing is saved. When decide emits nothing, nothing is saved either.
// Update returns the aggregate as saved.
func (r *Repository[T, TTx]) Update(ctx context.Context, id string, decide func(*Aggregate[T]) error) (*Aggregate[T], error) {
	var last error
	for attempt := 1; attempt <= r.cfg.MaxAttempts; attempt++ {
		a, err := r.Load(ctx, id, nil)
		if errors.Is(err, ErrStreamNotFound) {
			a = r.New(id)
		} else if err != nil {
			return nil, err
		}
		if err := decide(a); err != nil {
			return nil, err
		}
		err = r.Save(ctx, a)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, ErrConcurrency) {
			return nil, err
		}
		last = err
		r.logger.DebugContext(ctx, "meowmx: update conflict, retrying", "aggregate_id", id, "attempt", attempt, "err", err)
	}
	return nil, &RetriesExhaustedError{ID: id, Attempts: r.cfg.MaxAttempts, Err: last}
}
