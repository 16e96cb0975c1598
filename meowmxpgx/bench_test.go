package meowmxpgx_test

// Benchmarks of the append and read paths, each beside the same work written
// as plain SQL through pgx, in the same run, on tables created by meowmx's
// migration. The plain SQL is the statements of the pgbench baselines
// (shared/baselines/raw_*.sql): BEGIN; INSERT es_aggregates ON CONFLICT DO
// NOTHING; UPDATE es_aggregates ... version check; INSERT es_events; COMMIT.
//
// Sub-benchmarks are named Workload/writers=N/impl, where impl is
//
//	meowmx   the store's public API
//	sql-1rt  the plain statements in one round trip (a pgx.Batch)
//	sql-5rt  the plain statements one round trip each (BEGIN ... COMMIT)
//
// Each reports events/s. scripts/bench runs them and prints meowmx's ratio
// to sql-1rt.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// benchPayload is the payload of the pgbench baselines.
const benchPayload = `{"orderId": 12345, "customer": "c-0042", "amount": 99.95, "currency": "EUR", "note": "benchmark payload"}`

// benchWriters are the numbers of concurrent writers (or readers) measured.
var benchWriters = []int{1, 16} //nolint:gochecknoglobals // constant table

type benchEnv struct {
	pool *pgxpool.Pool
	// store appends one transaction per append (group commit off), as the
	// plain SQL does; grouped is the default store, with group commit.
	store, grouped *meowmx.Store[pgx.Tx]
	schema         string // quoted
	schemaName     string // as created
}

// newBenchEnv opens a pool of its own, large enough for 16 writers, on a
// new schema migrated by meowmx.
func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	_, schema := dbtest.Schema(b)
	pool, err := dbtest.NewPool(ctx, 20)
	if err != nil {
		b.Skipf("PostgreSQL not reachable: %v", err)
	}
	b.Cleanup(pool.Close)
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	store, err := meowmx.NewStore(driver, &meowmx.Config{GroupCommit: meowmx.GroupCommitConfig{Disabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	grouped, err := meowmx.NewStore(driver, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.Migrate(ctx, nil); err != nil {
		b.Fatal(err)
	}
	// Open every connection now, so that no measurement pays for one.
	conns := make([]*pgxpool.Conn, 0, 20)
	for range 20 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	return &benchEnv{pool: pool, store: store, grouped: grouped, schema: pgx.Identifier{schema}.Sanitize(), schemaName: schema}
}

//nolint:gochecknoglobals // distinguishes the streams of successive runs
var benchRun atomic.Int64

// runID returns a prefix unique to one run of a sub-benchmark.
func runID() string {
	return fmt.Sprintf("r%d-%d", time.Now().UnixNano(), benchRun.Add(1))
}

// parallel runs b.N operations on w goroutines and reports events/s.
// op gets the worker's number and its own count of operations so far.
func parallel(b *testing.B, w, eventsPerOp int, op func(ctx context.Context, worker, i int) error) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, w)
	b.ResetTimer()
	for worker := range w {
		wg.Go(func() {
			for i := 0; next.Add(1) <= int64(b.N); i++ {
				if err := op(ctx, worker, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*eventsPerOp)/b.Elapsed().Seconds(), "events/s")
}

// plainSQL holds the baseline statements for one schema.
type plainSQL struct {
	insertAgg, updateAgg, insertEvent, insertEvents, readStream string
}

func newPlainSQL(schema string) *plainSQL {
	return &plainSQL{
		insertAgg: `INSERT INTO ` + schema + `.es_aggregates (id, version, aggregate_type)
			VALUES ($1, -1, $2) ON CONFLICT DO NOTHING`,
		updateAgg: `UPDATE ` + schema + `.es_aggregates SET version = $3
			WHERE id = $1 AND version = $2`,
		insertEvent: `INSERT INTO ` + schema + `.es_events (transaction_id, aggregate_id, version, event_type, json_data)
			VALUES (pg_current_xact_id(), $1, $2, $3, $4)`,
		insertEvents: `INSERT INTO ` + schema + `.es_events (transaction_id, aggregate_id, version, event_type, json_data)
			SELECT pg_current_xact_id(), $1, $2::int + v.n::int, v.t, v.d::json
			FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS v(t, d, n)`,
		readStream: `SELECT e.id, e.transaction_id, e.aggregate_id,
				(SELECT a.aggregate_type FROM ` + schema + `.es_aggregates a WHERE a.id = $1), e.version,
				e.event_type, e.json_data, e.metadata, e.event_uuid, e.created_at
			FROM ` + schema + `.es_events e
			WHERE e.aggregate_id = $1 ORDER BY e.version`,
	}
}

// appendPlain appends events (one, or many through unnest) to a stream at
// expected version exp, with the baseline statements, in one round trip
// (a pgx.Batch) or in one round trip per statement.
func (q *plainSQL) appendPlain(ctx context.Context, pool *pgxpool.Pool, oneTrip bool, aggType, id string, exp int, types, data []string) error {
	last := exp + len(types)
	if oneTrip {
		var batch pgx.Batch
		batch.Queue("BEGIN")
		batch.Queue(q.insertAgg, id, aggType)
		batch.Queue(q.updateAgg, id, exp, last).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("stream %s is not at version %d", id, exp)
			}
			return nil
		})
		if len(types) == 1 {
			batch.Queue(q.insertEvent, id, exp+1, types[0], data[0])
		} else {
			batch.Queue(q.insertEvents, id, exp, types, data)
		}
		batch.Queue("COMMIT")
		return pool.SendBatch(ctx, &batch).Close()
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, q.insertAgg, id, aggType); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, q.updateAgg, id, exp, last)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("stream %s is not at version %d", id, exp)
		}
		if len(types) == 1 {
			_, err = tx.Exec(ctx, q.insertEvent, id, exp+1, types[0], data[0])
		} else {
			_, err = tx.Exec(ctx, q.insertEvents, id, exp, types, data)
		}
		return err
	})
}

// plainEvent is a row read by the plain-SQL stream read.
type plainEvent struct {
	ID            int64
	TransactionID uint64
	AggregateID   string
	AggregateType string
	Version       int64
	EventType     string
	Data          []byte
	Metadata      []byte
	UUID          pgtype.UUID
	CreatedAt     time.Time
}

func (q *plainSQL) readPlain(ctx context.Context, pool *pgxpool.Pool, id string) ([]plainEvent, error) {
	rows, _ := pool.Query(ctx, q.readStream, id)
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (plainEvent, error) {
		var e plainEvent
		err := row.Scan(&e.ID, &e.TransactionID, &e.AggregateID, &e.AggregateType, &e.Version,
			&e.EventType, &e.Data, &e.Metadata, &e.UUID, &e.CreatedAt)
		return e, err
	})
}

// appendWorkload benchmarks appends of n events per operation; fresh makes
// every operation append to a new stream, else each writer appends to a
// stream of its own at the exact expected version.
func appendWorkload(b *testing.B, fresh bool, n int) {
	env := newBenchEnv(b)
	q := newPlainSQL(env.schema)
	eventType := "Deposited"
	if fresh {
		eventType = "OrderPlaced"
	}
	types, data := make([]string, n), make([]string, n)
	events := make([]meowmx.EventData, n)
	for i := range n {
		types[i], data[i] = eventType, benchPayload
		events[i] = meowmx.EventData{Type: eventType, Data: json.RawMessage(benchPayload)}
	}
	aggType := "Account"
	if fresh {
		aggType = "Order"
	}
	for _, w := range benchWriters {
		for _, impl := range []string{"meowmx", "meowmx-grouped", "sql-1rt", "sql-5rt"} {
			b.Run(fmt.Sprintf("writers=%d/%s", w, impl), func(b *testing.B) {
				run := runID()
				streamID := func(worker, i int) string {
					if fresh {
						return run + "-" + strconv.Itoa(worker) + "-" + strconv.Itoa(i)
					}
					return run + "-" + strconv.Itoa(worker)
				}
				// Existing streams: each writer's stream gets its first
				// event before the timer starts.
				if !fresh {
					for worker := range w {
						if _, err := env.store.Append(context.Background(), meowmx.StreamID{Type: aggType, ID: streamID(worker, 0)},
							meowmx.NoStream, events[0]); err != nil {
							b.Fatal(err)
						}
					}
				}
				// version returns the stream's version before a writer's
				// i-th operation.
				version := func(i int) int {
					if fresh {
						return -1
					}
					return i * n
				}
				parallel(b, w, n, func(ctx context.Context, worker, i int) error {
					id, exp := streamID(worker, i), version(i)
					switch impl {
					case "meowmx":
						_, err := env.store.Append(ctx, meowmx.StreamID{Type: aggType, ID: id}, meowmx.Exact(int64(exp)), events...)
						return err
					case "meowmx-grouped":
						_, err := env.grouped.Append(ctx, meowmx.StreamID{Type: aggType, ID: id}, meowmx.Exact(int64(exp)), events...)
						return err
					}
					return q.appendPlain(ctx, env.pool, impl == "sql-1rt", aggType, id, exp, types, data)
				})
			})
		}
	}
}

// BenchmarkAppendNewStream appends one event to a new stream per operation.
func BenchmarkAppendNewStream(b *testing.B) { appendWorkload(b, true, 1) }

// BenchmarkAppendExistingStream appends one event per operation to the
// writer's stream, at the exact expected version.
func BenchmarkAppendExistingStream(b *testing.B) { appendWorkload(b, false, 1) }

// BenchmarkAppend100 appends 100 events per operation to the writer's
// stream, at the exact expected version.
func BenchmarkAppend100(b *testing.B) { appendWorkload(b, false, 100) }

// BenchmarkReadStream reads a whole stream of readStreamLen events per
// operation.
func BenchmarkReadStream(b *testing.B) {
	const readStreamLen = 1000
	env := newBenchEnv(b)
	q := newPlainSQL(env.schema)
	ctx := context.Background()
	id := "read-" + runID()
	events := make([]meowmx.EventData, readStreamLen)
	for i := range events {
		events[i] = meowmx.EventData{Type: "Deposited", Data: json.RawMessage(benchPayload)}
	}
	if _, err := env.store.Append(ctx, meowmx.StreamID{Type: "Account", ID: id}, meowmx.NoStream, events...); err != nil {
		b.Fatal(err)
	}
	for _, w := range benchWriters {
		for _, impl := range []string{"meowmx", "sql-1rt"} {
			b.Run(fmt.Sprintf("writers=%d/%s", w, impl), func(b *testing.B) {
				parallel(b, w, readStreamLen, func(ctx context.Context, _, _ int) error {
					var n int
					if impl == "meowmx" {
						evs, err := env.store.ReadStream(ctx, id, nil)
						if err != nil {
							return err
						}
						n = len(evs)
					} else {
						evs, err := q.readPlain(ctx, env.pool, id)
						if err != nil {
							return err
						}
						n = len(evs)
					}
					if n != readStreamLen {
						return fmt.Errorf("read %d events, want %d", n, readStreamLen)
					}
					return nil
				})
			})
		}
	}
}
