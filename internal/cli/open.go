package cli

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxpgx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// store is what the commands use of a meowmx.Store, whichever its driver.
type store interface {
	Migrate(ctx context.Context, opts *meowmx.MigrateOpts) (*meowmx.MigrateResult, error)
	Append(ctx context.Context, stream meowmx.StreamID, expected meowmx.ExpectedVersion, events ...meowmx.EventData) (*meowmx.AppendResult, error)
	ReadStream(ctx context.Context, id string, opts *meowmx.ReadStreamOpts) ([]*meowmx.RecordedEvent, error)
	IterStream(ctx context.Context, id string, opts *meowmx.ReadStreamOpts) iter.Seq2[*meowmx.RecordedEvent, error]
	ReadAll(ctx context.Context, opts *meowmx.ReadAllOpts) ([]*meowmx.RecordedEvent, error)
	IterAll(ctx context.Context, opts *meowmx.ReadAllOpts) iter.Seq2[*meowmx.RecordedEvent, error]
	Stream(ctx context.Context, id string) (*meowmx.StreamInfo, error)
	Subscriptions(ctx context.Context) ([]*meowmx.SubscriptionInfo, error)
	ResetSubscription(ctx context.Context, name string, pos meowmx.Position) error
	DeleteSubscription(ctx context.Context, name string) error
	WaitForSubscription(ctx context.Context, name string) error
	ParkedEvents(ctx context.Context, name string) ([]*meowmx.ParkedEvent, error)
	ReplayParked(ctx context.Context, name string, opts *meowmx.ReplayParkedOpts) (int, error)
}

// subscription is what the commands ask of a subscription.
type subscription struct {
	name       string
	types      []string
	start      meowmx.StartFrom
	partitions int
	// handle is called with each batch of events, in the transaction in
	// which the checkpoint advances.
	handle func(ctx context.Context, evs []*meowmx.RecordedEvent) error
}

// runner returns a function that runs subscriptions on s, whatever its
// transaction type.
func runner[TTx any](s *meowmx.Store[TTx]) func(context.Context, subscription) error {
	return func(ctx context.Context, sub subscription) error {
		return s.RunSubscription(ctx, &meowmx.SubscriptionConfig[TTx]{
			Name:           sub.name,
			AggregateTypes: sub.types,
			StartFrom:      sub.start,
			Partitions:     sub.partitions,
			BatchSize:      100,
			BatchHandler: meowmx.BatchHandlerFunc[TTx](func(ctx context.Context, _ TTx, evs []*meowmx.RecordedEvent) error {
				return sub.handle(ctx, evs)
			}),
			PollInterval: 50 * time.Millisecond,
			LockInterval: 200 * time.Millisecond,
		})
	}
}

// backend is an open store and how to close it.
type backend struct {
	store
	// embedded is true for SQLite: commands create missing tables.
	embedded bool
	close    func()
	// run runs a subscription until ctx ends.
	run func(context.Context, subscription) error
}

func isPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// open opens the database named by --db, MEOWMX_DATABASE_URL or the
// default. On SQLite, the embedded default, missing tables are created so
// that every command works on a new file; PostgreSQL needs `meowmx migrate`.
func (a *app) open(ctx context.Context) (*backend, error) {
	db := a.database()
	if !isPostgresURL(db) {
		b, err := openSQLite(ctx, db, a.storeConfig())
		if err != nil {
			return nil, err
		}
		if _, err := b.Migrate(ctx, nil); err != nil {
			b.close()
			return nil, err
		}
		return b, nil
	}
	cfg, err := pgxpool.ParseConfig(db)
	if err != nil {
		return nil, usagef("--db: %v", err)
	}
	// ?search_path=events in the URL chooses the schema (its first entry).
	schema, _, _ := strings.Cut(cfg.ConnConfig.RuntimeParams["search_path"], ",")
	schema = strings.Trim(strings.TrimSpace(schema), `"`)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	if err != nil {
		pool.Close()
		return nil, usageError{err}
	}
	s, err := meowmx.NewStore(driver, a.storeConfig())
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &backend{store: s, close: closer(s, pool.Close), run: runner(s)}, nil
}

// openNoMigrate opens the database without creating tables.
func (a *app) openNoMigrate(ctx context.Context) (*backend, error) {
	db := a.database()
	if !isPostgresURL(db) {
		return openSQLite(ctx, db, a.storeConfig())
	}
	return a.open(ctx)
}

// openSQLite opens an SQLite file, creating it if needed.
func openSQLite(ctx context.Context, path string, cfg *meowmx.Config) (*backend, error) {
	driver, err := meowmxsqlite.Open(ctx, path, nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s, err := meowmx.NewStore(driver, cfg)
	if err != nil {
		_ = driver.Close()
		return nil, err
	}
	return &backend{store: s, embedded: true, close: closer(s, func() { _ = driver.Close() }), run: runner(s)}, nil
}

// closer returns a function that closes s, sending its last notifications
// to the subscribers of other processes, then its database.
func closer[TTx any](s *meowmx.Store[TTx], closeDB func()) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx) // at worst, subscribers find the events by their probe
		closeDB()
	}
}

// withBackend returns a command's RunE that opens the database, runs fn
// and closes the database.
func (a *app) withBackend(fn func(ctx context.Context, b *backend, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		b, err := a.open(ctx)
		if err != nil {
			return err
		}
		defer b.close()
		return fn(ctx, b, args)
	}
}
