package cli

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"regexp"
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

// lockInterval is how often the CLI's workers try to take their
// subscription's lease, and retry after a database error.
const lockInterval = 200 * time.Millisecond

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
			LockInterval: lockInterval,
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
	// ping checks that the database answers.
	ping func(context.Context) error
}

// openMode says what a command does to the database, which decides how
// an SQLite file is opened.
type openMode int

const (
	// openWrite: the command writes. A new SQLite file is created, with
	// its tables.
	openWrite openMode = iota
	// openRead: the command only reads. An existing SQLite file is opened
	// read-only (nothing is written to it, so a read-only file can be
	// read); a missing one is created as by openWrite, so that a first
	// `read --tail` waits for the events to come.
	openRead
	// openMigrate: `meowmx migrate`, which creates the tables itself.
	openMigrate
)

// dbKind is the kind of database --db names.
type dbKind int

const (
	dbPostgres dbKind = iota
	dbSQLite
)

// libpqKeyword matches the start of a libpq key=value connection string.
var libpqKeyword = regexp.MustCompile(`^\s*[A-Za-z_]+\s*=`)

// classify tells which database db names: a postgres:// or postgresql://
// URL, in any case, or a libpq key=value string, is PostgreSQL; an
// existing file, or a path ending in .db, .sqlite or .sqlite3, is SQLite.
// Anything else is refused, rather than taken for a new SQLite file (a
// mistyped URL would silently create one). For PostgreSQL it returns the
// connection string with its scheme in lower case, as pgx wants it.
func classify(db string) (dbKind, string, error) {
	lower := strings.ToLower(db)
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		if strings.HasPrefix(lower, scheme) {
			return dbPostgres, scheme + db[len(scheme):], nil
		}
	}
	if fi, err := os.Stat(db); err == nil && !fi.IsDir() {
		return dbSQLite, db, nil
	}
	if libpqKeyword.MatchString(db) {
		return dbPostgres, db, nil
	}
	for _, ext := range []string{".db", ".sqlite", ".sqlite3"} {
		if strings.HasSuffix(lower, ext) && len(db) > len(ext) {
			return dbSQLite, db, nil
		}
	}
	if db == meowmxsqlite.Memory {
		return dbSQLite, db, nil
	}
	return 0, "", usagef("--db %s: not a postgres:// URL, a key=value connection string, an existing SQLite file, "+
		"or a path ending in .db, .sqlite or .sqlite3", short(db))
}

// open opens the database named by --db, MEOWMX_DATABASE_URL or the
// default for a command that writes. On SQLite, the embedded default,
// missing tables are created so that every command works on a new file;
// PostgreSQL needs `meowmx migrate`.
func (a *app) open(ctx context.Context) (*backend, error) { return a.openFor(ctx, openWrite) }

// openFor opens the database for a command of the given mode.
func (a *app) openFor(ctx context.Context, mode openMode) (*backend, error) {
	kind, db, err := classify(a.database())
	if err != nil {
		return nil, err
	}
	cfg := a.storeConfig()
	if kind == dbSQLite {
		readOnly := false
		if mode == openRead {
			_, statErr := os.Stat(db)
			readOnly = statErr == nil
		}
		b, err := openSQLite(ctx, db, readOnly, cfg)
		if err != nil {
			return nil, err
		}
		if readOnly {
			// A file without the tables (another process may be creating
			// them this moment) is opened for writing, as a new one.
			_, err := b.ReadAll(ctx, &meowmx.ReadAllOpts{Limit: 1})
			if !errors.Is(err, meowmx.ErrNotMigrated) {
				return b, nil
			}
			b.close()
			if b, err = openSQLite(ctx, db, false, cfg); err != nil {
				return nil, err
			}
		}
		if mode != openMigrate {
			if _, err := b.Migrate(ctx, nil); err != nil {
				b.close()
				return nil, err
			}
		}
		return b, nil
	}
	pcfg, err := pgxpool.ParseConfig(db)
	if err != nil {
		// pgx's message may repeat the connection string, password and
		// all: say what is wrong without it.
		return nil, usagef("--db: not a valid PostgreSQL connection string: %s", pgParseReason(err))
	}
	// ?search_path=events in the URL chooses the schema (its first entry).
	// It is not sent to the server: meowmx names the schema in every
	// statement, and a server refuses some names as a search_path at
	// connect time.
	schema, _, _ := strings.Cut(pcfg.ConnConfig.RuntimeParams["search_path"], ",")
	schema = strings.Trim(strings.TrimSpace(schema), `"`)
	delete(pcfg.ConnConfig.RuntimeParams, "search_path")
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	if err != nil {
		pool.Close()
		return nil, usageError{err}
	}
	s, err := meowmx.NewStore(driver, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &backend{store: s, close: closer(s, pool.Close), run: runner(s), ping: pool.Ping}, nil
}

// pgParseReason returns why pgx refused a connection string, without the
// string itself.
func pgParseReason(err error) string {
	var ce interface{ Unwrap() error }
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		return oneLine(ce.Unwrap())
	}
	return "cannot parse it"
}

// openSQLite opens an SQLite file, creating it if needed, or read-only.
func openSQLite(ctx context.Context, path string, readOnly bool, cfg *meowmx.Config) (*backend, error) {
	driver, err := meowmxsqlite.Open(ctx, path, &meowmxsqlite.Config{ReadOnly: readOnly})
	if err != nil {
		return nil, err // names the path
	}
	s, err := meowmx.NewStore(driver, cfg)
	if err != nil {
		_ = driver.Close()
		return nil, err
	}
	return &backend{store: s, embedded: true, close: closer(s, func() { _ = driver.Close() }), run: runner(s),
		ping: driver.DB().PingContext}, nil
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

// withBackend returns a command's RunE that opens the database for mode,
// runs fn and closes the database.
func (a *app) withBackend(mode openMode, fn func(ctx context.Context, b *backend, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		b, err := a.openFor(ctx, mode)
		if err != nil {
			return err
		}
		defer b.close()
		return fn(ctx, b, args)
	}
}

// storeLogger is the logger handed to the store: the command's logger for
// the long-running commands, nil (the store's default: discard) for the
// others, whose outcome is their one line.
func (a *app) storeLogger() *slog.Logger {
	if a.long {
		return a.log
	}
	return nil
}
