package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxdriver/meowmxdrivertest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// TestDriverContract runs the driver-level contract suite on PostgreSQL,
// each test on a schema of its own.
func TestDriverContract(t *testing.T) {
	t.Parallel()
	meowmxdrivertest.Exercise(t, meowmxdrivertest.Backend[pgx.Tx]{
		NewDriver: func(t *testing.T) meowmxdriver.Driver[pgx.Tx] {
			pool, schema := dbtest.Schema(t)
			return migrated(t, pool, schema)
		},
		NewCountingDriver: func(t *testing.T) (meowmxdriver.Driver[pgx.Tx], *meowmxdrivertest.Counter) {
			return newCountingDriver(t)
		},
		WriteStray: writeStray,
		Overtake:   overtake,
		Statements: meowmxdrivertest.Statements{
			// 1. the append statement (WITH agg AS (UPDATE es_aggregates
			//    …) INSERT INTO es_events …), which returns no row;
			// 2. the stream lookup (SELECT … FROM es_aggregates), for the
			//    stream as found.
			Refused: meowmxdrivertest.Sends{1, 1},
			// 1. the append statement, which fails with a unique
			//    violation on es_events (aggregate_id, version): without
			//    UUIDs, ErrDuplicate at once.
			Conflict: meowmxdrivertest.Sends{1},
			// In the caller's transaction, which sent BEGIN before:
			// 1. the append statement, refused by the order guard (no row);
			// 2. the stream lookup, which finds the stream at the expected
			//    version: ErrReordered.
			ReorderedTx: meowmxdrivertest.Sends{1, 1},
			// 1. the append statement, refused by the order guard;
			// 2. the stream lookup: at the expected version, so reordered;
			// 3. one batch: BEGIN, the stream's row lock (SELECT … FOR
			//    UPDATE, which the transaction waits for before it takes
			//    its id), the append statement, COMMIT.
			Reordered: meowmxdrivertest.Sends{1, 1, 4},
			// 1. the append statement, which fails with a unique violation;
			// 2. the stream lookup, at the expected version;
			// 3. whether one of its UUIDs is stored (none): ErrDuplicate.
			ConflictUUIDs: meowmxdrivertest.Sends{1, 1, 1},
		},
	})
}

// migrated returns a driver on schema, with its tables created.
func migrated(t *testing.T, pool *pgxpool.Pool, schema string) *meowmxpgx.Driver {
	t.Helper()
	d, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(t, err)
	_, err = d.Migrate(context.Background(), nil)
	require.NoError(t, err)
	return d
}

// countingTracer records in a Counter every statement of its pool's
// connections: each Query, QueryRow and Exec (BEGIN and COMMIT of pgx
// transactions included), and each statement queued in a batch.
type countingTracer struct{ c *meowmxdrivertest.Counter }

var (
	_ pgx.QueryTracer = countingTracer{}
	_ pgx.BatchTracer = countingTracer{}
)

func (tr countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	tr.c.Statement(data.SQL)
	return ctx
}

func (countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart records the batch's statements. pgx sends them all at
// once; TraceBatchQuery reports only those whose results were read, which
// is fewer when one fails.
func (tr countingTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	sqls := make([]string, len(data.Batch.QueuedQueries))
	for i, q := range data.Batch.QueuedQueries {
		sqls[i] = q.SQL
	}
	tr.c.Batch(sqls)
	return ctx
}

func (countingTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (countingTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// newCountingDriver returns a driver on a schema of its own, on a pool of
// its own whose statements the counter records.
func newCountingDriver(t *testing.T) (*meowmxpgx.Driver, *meowmxdrivertest.Counter) {
	t.Helper()
	_, schema := dbtest.Schema(t)
	c := &meowmxdrivertest.Counter{}
	cfg, err := pgxpool.ParseConfig(dbtest.DatabaseURL())
	require.NoError(t, err)
	cfg.MaxConns = 4
	cfg.ConnConfig.Tracer = countingTracer{c}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close) // before the schema is dropped
	d := migrated(t, pool, schema)
	c.Reset()
	return d, c
}

// writeStray implements meowmxdrivertest.Backend.WriteStray on the test
// pool: an event row that no es_aggregates version accounts for.
func writeStray(t *testing.T, d meowmxdriver.Driver[pgx.Tx], aggregateID string, version int64) {
	t.Helper()
	schema := pgx.Identifier{d.(*meowmxpgx.Driver).Schema()}.Sanitize()
	_, err := dbtest.Pool(t).Exec(context.Background(), `INSERT INTO `+schema+`.es_events
			(transaction_id, aggregate_id, version, event_type, json_data)
		VALUES (pg_current_xact_id(), $1, $2, 'Stray', '{}')`, aggregateID, version)
	require.NoError(t, err)
}

// overtake implements meowmxdrivertest.Backend.Overtake on the test pool.
// A transaction locks the stream's row. Released, it waits until a session
// waits for that lock (an append, which took its transaction id on the
// way), takes the id of a newer transaction, makes it the stream's
// last_transaction_id and commits: the waiting append then finds the row
// written by a transaction newer than its own, as when that transaction
// locked the row between the append taking its id and locking it.
func overtake(t *testing.T, d meowmxdriver.Driver[pgx.Tx], aggregateID string) func() {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	aggregates := pgx.Identifier{d.(*meowmxpgx.Driver).Schema()}.Sanitize() + ".es_aggregates"
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	var pid int
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	tag, err := tx.Exec(ctx, `SELECT FROM `+aggregates+` WHERE id = $1 FOR UPDATE`, aggregateID)
	require.NoError(t, err)
	require.Equal(t, int64(1), tag.RowsAffected(), "the stream exists")
	return func() {
		t.Helper()
		require.Eventually(t, func() bool {
			var waiting int
			require.NoError(t, pool.QueryRow(ctx,
				`SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))`, pid).Scan(&waiting))
			return waiting > 0
		}, 30*time.Second, 2*time.Millisecond, "no append waits for the stream")
		var newer uint64
		require.NoError(t, pool.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&newer))
		_, err := tx.Exec(ctx, `UPDATE `+aggregates+` SET last_transaction_id = $2::xid8 WHERE id = $1`, aggregateID, newer)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
}

// TestStoreAppendSentOnce checks that an append that fails on an idle
// store reaches the database once: Store.Append, grouped (the default),
// sends an append that finds no batch running at once as a batch of one,
// whose error is final. It used to be sent again.
func TestStoreAppendSentOnce(t *testing.T) {
	t.Parallel()
	for _, withUUID := range []bool{false, true} {
		t.Run(fmt.Sprintf("UUIDs=%v", withUUID), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d, c := newCountingDriver(t)
			store, err := meowmx.NewStore(d, nil)
			require.NoError(t, err)
			require.NotNil(t, d.Capabilities().BatchAppender, "grouped appends")
			s := meowmx.StreamID{Type: "cat", ID: "s"}
			ev := func() meowmx.EventData {
				e := meowmx.EventData{Type: "E", Data: json.RawMessage(`{}`)}
				if withUUID {
					e.UUID = uuid.New()
				}
				return e
			}
			_, err = store.Append(ctx, s, meowmx.NoStream, ev())
			require.NoError(t, err)
			writeStray(t, d, "s", 1)

			c.Reset()
			_, err = store.Append(ctx, s, meowmx.Exact(0), ev())
			require.ErrorIs(t, err, meowmx.ErrConcurrency)
			require.ErrorIs(t, err, meowmxdriver.ErrDuplicate)
			appends := 0
			for _, sql := range c.Statements() {
				if strings.Contains(sql, "INSERT INTO") && strings.Contains(sql, ".es_events") {
					appends++
				}
			}
			require.Equal(t, 1, appends, "append statements sent:\n%s", c)
			if !withUUID {
				// The append statement, nothing else: the store reads nothing
				// for a unique violation.
				require.Equal(t, meowmxdrivertest.Sends{1}, c.Sends(), "statements sent:\n%s", c)
			}
			info, err := store.Stream(ctx, "s")
			require.NoError(t, err)
			require.Equal(t, int64(0), info.Version, "nothing written")
		})
	}
}
