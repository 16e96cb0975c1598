package meowmxpgx_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// longStreamLen is the length of the stream BenchmarkIterStream reads:
// MEOWMX_BENCH_STREAM_LEN, else a million events.
func longStreamLen(b *testing.B) int {
	if s := os.Getenv("MEOWMX_BENCH_STREAM_LEN"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("MEOWMX_BENCH_STREAM_LEN=%q: want a positive number", s)
		}
		return n
	}
	return 1_000_000
}

// fillLongStream writes one stream of n events of benchPayload straight
// into the tables (generate_series, one transaction), as the Python
// client's rows look: no metadata, no UUID.
func fillLongStream(ctx context.Context, b *testing.B, pool *pgxpool.Pool, schema, id string, n int) {
	b.Helper()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+schema+`.es_aggregates (id, version, aggregate_type) VALUES ($1, $2, 'Account')`, id, n-1); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.es_events (transaction_id, aggregate_id, version, event_type, json_data)
			SELECT pg_current_xact_id(), $1, g, 'Deposited', $3::json FROM generate_series(0, $2::int - 1) g`, id, n, benchPayload)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE `+schema+`.es_events`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIterStream reads a whole stream of longStreamLen events with
// Store.IterStream and with one plain streaming pgx query of the same rows
// and columns, which scans each row into a reused struct. Each operation
// does both, alternating which goes first, so that both see the same load
// on a shared machine; it reports each side's events/s and their ratio.
func BenchmarkIterStream(b *testing.B) {
	env := newBenchEnv(b)
	q := newPlainSQL(env.schema)
	ctx := context.Background()
	n := longStreamLen(b)
	id := "long-" + runID()
	fillLongStream(ctx, b, env.pool, env.schema, id, n)
	store := func() error {
		read := 0
		for ev, err := range env.store.IterStream(ctx, id, nil) {
			if err != nil {
				return err
			}
			if ev.Version != int64(read) {
				return fmt.Errorf("event %d has version %d", read, ev.Version)
			}
			read++
		}
		if read != n {
			return fmt.Errorf("read %d events, want %d", read, n)
		}
		return nil
	}
	plain := func() error {
		read := 0
		rows, _ := env.pool.Query(ctx, q.readStream, id)
		var e plainEvent
		for rows.Next() {
			if err := rows.Scan(&e.ID, &e.TransactionID, &e.AggregateID, &e.AggregateType, &e.Version,
				&e.EventType, &e.Data, &e.Metadata, &e.UUID, &e.CreatedAt); err != nil {
				return err
			}
			if e.Version != int64(read) {
				return fmt.Errorf("event %d has version %d", read, e.Version)
			}
			read++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if read != n {
			return fmt.Errorf("read %d events, want %d", read, n)
		}
		return nil
	}
	pairedBench(b, n, store, plain)
}

// pairedBench runs meowmx's and the plain side of one workload of n events
// once each per operation, alternating which goes first, and reports
// meowmx-events/s, sql-events/s and ratio (meowmx's speed over the plain
// side's).
func pairedBench(b *testing.B, n int, meowmxSide, plainSide func() error) {
	b.Helper()
	var tm, tp time.Duration
	timed := func(f func() error, d *time.Duration) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		*d += time.Since(start)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			timed(meowmxSide, &tm)
			timed(plainSide, &tp)
		} else {
			timed(plainSide, &tp)
			timed(meowmxSide, &tm)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*n)/tm.Seconds(), "meowmx-events/s")
	b.ReportMetric(float64(b.N*n)/tp.Seconds(), "sql-events/s")
	b.ReportMetric(tp.Seconds()/tm.Seconds(), "ratio")
}
