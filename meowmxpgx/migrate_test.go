package meowmxpgx_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// freshSchema returns a schema name that does not exist yet, prefix
// followed by a random suffix, dropped (if created) when the test ends.
func freshSchema(t *testing.T, prefix string) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	pool := dbtest.Pool(t)
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		require.NoError(t, err)
	})
	return name
}

// TestSchemaNames checks that any schema name is quoted wherever it reaches
// SQL: migrate, append and read work in schemas whose names are SQL.
func TestSchemaNames(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{
		`it's `,
		`a"b `,
		`x"; DROP SCHEMA public CASCADE; -- `,
		`'); SELECT pg_sleep(10); -- `,
		`with space `,
		`Mixed CASE `,
		`ünïcødé 🐈 `,
		`$1 `,
		`es_events"."id `,
		`dot.ted `,
		`back\slash `,
		`{{schema}} `,
		`%s%d `,
		`$$; $meowmx$ `, // the dollar quotes of the migrations' DO blocks
	} {
		t.Run(prefix, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			schema := freshSchema(t, prefix)
			pool := dbtest.Pool(t)
			store := storeOn(t, pool, schema, nil, nil)
			for range 2 {
				_, err := store.Migrate(ctx, nil)
				require.NoError(t, err)
			}
			var tables int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = $1`, schema).Scan(&tables))
			require.GreaterOrEqual(t, tables, 5, "the tables are in the schema of exactly that name")

			stream := meowmx.StreamID{Type: schema, ID: schema}
			res, err := store.Append(ctx, stream, meowmx.NoStream, ev(schema, `{"schema": "x"}`))
			require.NoError(t, err)
			got, err := store.ReadStream(ctx, schema, nil)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, stream, got[0].StreamID)
			require.Equal(t, res.Events[0].Position, got[0].Position)
			info, err := store.Stream(ctx, schema)
			require.NoError(t, err)
			require.Equal(t, int64(0), info.Version)
			_, err = store.ReadAll(ctx, &meowmx.ReadAllOpts{AggregateTypes: []string{schema}, EventTypes: []string{schema}})
			require.NoError(t, err)
		})
	}
}

func TestSchemaNameRefused(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	for _, name := range []string{strings.Repeat("s", 64), "nul\x00", strings.Repeat("é", 32)} {
		_, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: name})
		require.Error(t, err, "%q", name)
	}
	_, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: strings.Repeat("s", 63)})
	require.NoError(t, err)
}

func TestMigrateIDTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)

	t.Run("UUID", func(t *testing.T) {
		t.Parallel()
		store := storeOn(t, pool, freshSchema(t, "meowmx_test_uuid_"), nil, nil)
		_, err := store.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: "uuid"})
		require.NoError(t, err)
		id := uuid.New()
		for _, bad := range []string{"not-a-uuid", strings.ToUpper(id.String()), "{" + id.String() + "}",
			strings.ReplaceAll(id.String(), "-", ""), id.String() + "0"} {
			_, err := store.Append(ctx, meowmx.StreamID{Type: "t", ID: bad}, meowmx.AnyVersion, ev("E", `{}`))
			require.ErrorIs(t, err, meowmx.ErrInvalidArgument, "%q", bad)
			_, err = store.Stream(ctx, bad)
			require.ErrorIs(t, err, meowmx.ErrStreamNotFound)
			evs, err := store.ReadStream(ctx, bad, nil)
			require.NoError(t, err)
			require.Empty(t, evs)
		}
		requireNoEvents(t, store)
		_, err = store.Append(ctx, meowmx.StreamID{Type: "t", ID: id.String()}, meowmx.NoStream, ev("E", `{}`))
		require.NoError(t, err)
		got, err := store.ReadStream(ctx, id.String(), nil)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, id.String(), got[0].StreamID.ID)
		// The type is fixed once the tables exist.
		_, err = store.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: "TEXT"})
		require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
		_, err = store.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: "UUID"})
		require.NoError(t, err)
	})

	t.Run("CHAR", func(t *testing.T) {
		t.Parallel()
		store := storeOn(t, pool, freshSchema(t, "meowmx_test_char_"), nil, nil)
		_, err := store.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: "CHAR(8)"})
		require.NoError(t, err)
		for _, bad := range []string{"123456789", "abc ", "12345678 ", "abcdefgh        ", "éééééééée"} {
			_, err := store.Append(ctx, meowmx.StreamID{Type: "t", ID: bad}, meowmx.AnyVersion, ev("E", `{}`))
			require.ErrorIs(t, err, meowmx.ErrInvalidArgument, "%q: never cut or padded into another id", bad)
		}
		requireNoEvents(t, store)
		for _, good := range []string{"12345678", "abc", "éééééééé", " lead"} {
			_, err := store.Append(ctx, meowmx.StreamID{Type: "t", ID: good}, meowmx.NoStream, ev("E", `{}`))
			require.NoError(t, err, "%q", good)
			got, err := store.ReadStream(ctx, good, nil)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.Equal(t, good, got[0].StreamID.ID, "the id reads back as written")
			info, err := store.Stream(ctx, good)
			require.NoError(t, err)
			require.Equal(t, good, info.StreamID.ID)
		}
		_, err = store.Stream(ctx, "abc ")
		require.ErrorIs(t, err, meowmx.ErrStreamNotFound, "an id with a trailing space is not the stream without it")
	})

	t.Run("bad types", func(t *testing.T) {
		t.Parallel()
		store := storeOn(t, pool, freshSchema(t, "meowmx_test_bad_"), nil, nil)
		for _, bad := range []string{"VARCHAR(5)", "CHAR(0)", "CHAR", "TEXT; DROP TABLE x", "INT", "CHAR(5) PRIMARY KEY"} {
			_, err := store.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: bad})
			require.ErrorIs(t, err, meowmx.ErrInvalidArgument, "%q", bad)
		}
	})
}

func requireNoEvents(t *testing.T, store *meowmx.Store[pgx.Tx]) {
	t.Helper()
	d := store.Driver().(*meowmxpgx.Driver)
	var n int
	require.NoError(t, d.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM `+
		pgx.Identifier{d.Schema(), "es_events"}.Sanitize()+`) + (SELECT count(*) FROM `+
		pgx.Identifier{d.Schema(), "es_aggregates"}.Sanitize()+`)`).Scan(&n))
	require.Zero(t, n, "nothing was written")
}

// migrateHelperEnv names the schema that TestMigrateHelperProcess migrates
// when the test binary runs as a helper process.
const migrateHelperEnv = "MEOWMX_TEST_MIGRATE_SCHEMA"

// TestMigrateHelperProcess is not a test: TestMigrateConcurrent runs the
// test binary with it to migrate from other processes.
func TestMigrateHelperProcess(t *testing.T) {
	schema := os.Getenv(migrateHelperEnv)
	if schema == "" {
		t.Skip("runs only as a helper process of TestMigrateConcurrent")
	}
	pool, err := dbtest.NewPool(context.Background(), 2)
	require.NoError(t, err)
	defer pool.Close()
	_, err = storeOn(t, pool, schema, nil, nil).Migrate(context.Background(), nil)
	require.NoError(t, err)
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := freshSchema(t, "meowmx_test_concurrent_")

	const goroutines, processes = 6, 3
	var wg sync.WaitGroup
	errs := make(chan error, goroutines+processes)
	for range goroutines {
		wg.Go(func() {
			pool, err := dbtest.NewPool(ctx, 2) // a pool each, as separate services would have
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
			if err != nil {
				errs <- err
				return
			}
			store, err := meowmx.NewStore(driver, nil)
			if err != nil {
				errs <- err
				return
			}
			if _, err := store.Migrate(ctx, nil); err != nil {
				errs <- err
			}
		})
	}
	for range processes {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMigrateHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), migrateHelperEnv+"="+schema, "MEOWMX_TEST_DATABASE_URL="+dbtest.DatabaseURL())
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- &helperError{err: err, out: string(out)}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	pool := dbtest.Pool(t)
	var versions, distinct int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM `+
		pgx.Identifier{schema, "meowmx_migrations"}.Sanitize()).Scan(&versions, &distinct))
	require.Positive(t, versions)
	require.Equal(t, distinct, versions, "each migration is recorded once")
	store := storeOn(t, pool, schema, nil, nil)
	res, err := store.Migrate(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, res.Applied)
	_, err = store.Append(ctx, meowmx.StreamID{Type: "t", ID: "after"}, meowmx.NoStream, ev("E", `{}`))
	require.NoError(t, err)
}

type helperError struct {
	err error
	out string
}

func (e *helperError) Error() string { return e.err.Error() + ": " + e.out }
