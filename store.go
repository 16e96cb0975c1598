package meowmx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meowmx/meowmx/internal/notifier"
	"github.com/meowmx/meowmx/meowmxdriver"
)

// Store appends and reads events. TTx is the driver's transaction type:
// pgx.Tx for meowmxpgx, *sql.Tx for meowmxsqlite. A Store is safe for
// concurrent use.
type Store[TTx any] struct {
	driver meowmxdriver.Driver[TTx]
	config *Config
	caps   meowmxdriver.Capabilities
	group  *groupCommitter // nil when group commit is off or the driver has no batches
	hub    *notifier.Hub   // wakes subscriptions
	tel    *telemetry      // traces and metrics; nil records nothing
}

// NewStore returns a store on a driver, such as meowmxpgx.New(pool, nil).
// It does no I/O: call Migrate to create the tables.
func NewStore[TTx any](driver meowmxdriver.Driver[TTx], config *Config) (*Store[TTx], error) {
	if driver == nil {
		return nil, errors.New("meowmx: driver is nil (try meowmxpgx.New(pool, nil) or meowmxsqlite.New(db, nil))")
	}
	cfg := config.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	caps := driver.Capabilities()
	tel, err := newTelemetry(cfg.TracerProvider, cfg.MeterProvider, driver.Name())
	if err != nil {
		return nil, err
	}
	s := &Store[TTx]{driver: driver, config: cfg, caps: caps, tel: tel,
		hub: notifier.New(caps.Listener, cfg.NotifyInterval, cfg.Logger)}
	tel.listening = s.hub.Connected
	tel.listSubscriptions = func(ctx context.Context) ([]*SubscriptionInfo, error) {
		return driver.Executor().SubscriptionList(ctx, &meowmxdriver.SubscriptionListParams{LagCap: LagCountMax})
	}
	tel.oldestHolder = func(ctx context.Context) (time.Duration, error) {
		hs, err := driver.Executor().HorizonHolders(ctx, &meowmxdriver.HorizonHoldersParams{Limit: 1})
		if err != nil || len(hs) == 0 {
			return 0, err
		}
		return hs[0].Age, nil
	}
	if caps.BatchAppender != nil && !cfg.GroupCommit.Disabled {
		s.group = newGroupCommitter(caps.BatchAppender.EventAppendBatch, cfg.GroupCommit)
		s.group.onBatch = tel.recordBatch
	}
	return s, nil
}

// Close sends the notifications still pending for this store's appends,
// at once, and waits until they are sent (or ctx ends); it stops the
// store's listening connection. Call it before the process exits, so that
// subscribers in other processes learn of the last appends without waiting
// for their probe or poll. It does not close the driver, and stops no
// subscription: end RunSubscription first (by its context). The store can
// still be used after Close, its notifications then sent one by one.
func (s *Store[TTx]) Close(ctx context.Context) error {
	if err := s.hub.Close(ctx); err != nil {
		return fmt.Errorf("meowmx: close: %w", err)
	}
	return nil
}

// Driver returns the store's driver.
func (s *Store[TTx]) Driver() meowmxdriver.Driver[TTx] { return s.driver }

// MigrateOpts are the options of Store.Migrate. Nil means the defaults.
type MigrateOpts struct {
	// AggregateIDType is the SQL type of the aggregate id columns when the
	// tables are first created: "TEXT" (the default), "UUID" or "CHAR(n)".
	// When the tables exist with another type, Migrate refuses.
	AggregateIDType string
}

// MigrateResult tells what Store.Migrate did.
type MigrateResult struct {
	// Applied lists the migration versions that this call applied.
	Applied []int
	// Version is the schema version after the call.
	Version int
}

// Migrate creates the tables or brings them up to date. It is safe to run
// again and from several processes at once: concurrent runs wait for each
// other. Tables created by the Python meowmx client are adopted.
func (s *Store[TTx]) Migrate(ctx context.Context, opts *MigrateOpts) (*MigrateResult, error) {
	p := &meowmxdriver.MigrateParams{}
	if opts != nil {
		p.AggregateIDType = opts.AggregateIDType
	}
	res, err := s.driver.Migrate(ctx, p)
	if err != nil {
		if errors.Is(err, meowmxdriver.ErrInvalidInput) {
			return nil, &ArgumentError{Arg: "migration", Reason: "refused by the " + s.driver.Name() + " driver", Err: err}
		}
		return nil, fmt.Errorf("meowmx: migrate: %w", err)
	}
	return &MigrateResult{Applied: res.Applied, Version: res.Version}, nil
}
