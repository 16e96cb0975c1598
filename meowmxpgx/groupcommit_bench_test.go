package meowmxpgx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// BenchmarkGroupCommit appends single events from 1, 16 and 64 goroutines,
// to new streams and to existing ones (one per goroutine, exact expected
// version), through the store with group commit on and off, and as the
// plain-SQL baseline: the pipelined per-append transaction of
// raw_new_stream_pipe.sql and raw_existing_stream_pipe.sql (BEGIN, three
// statements, COMMIT in one pgx.Batch). It reports events/s and the p50
// and p99 latency of one append, the appends per transaction and the CPU
// time of the PostgreSQL backends per append (when the server runs on
// this machine). meowmx-grouped-window waits 500µs for more appends when
// busy. Run with
//
//	go test -run '^$' -bench GroupCommit -benchtime 3s ./meowmxpgx/
func BenchmarkGroupCommit(b *testing.B) {
	for _, goroutines := range []int{1, 16, 64} {
		for _, target := range []string{"new", "existing"} {
			for _, mode := range []string{"sql-pipelined", "meowmx", "meowmx-grouped", "meowmx-grouped-window"} {
				if goroutines == 1 && mode == "meowmx-grouped-window" {
					continue // the same as meowmx-grouped: batches of one, never waiting
				}
				b.Run(fmt.Sprintf("g=%d/stream=%s/%s", goroutines, target, mode), func(b *testing.B) {
					benchAppends(b, goroutines, target, mode)
				})
			}
		}
	}
}

func benchAppends(b *testing.B, goroutines int, target, mode string) {
	l := newAppendLoad(b, goroutines, target, mode)
	ctx := context.Background()
	var lastID int64
	require.NoError(b, l.pool.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM "+l.schema+".es_events").Scan(&lastID))
	b.ResetTimer()
	r := l.run(b, int64(b.N), 0)
	b.StopTimer()
	if len(r.latencies) == 0 {
		return
	}
	b.ReportMetric(r.rate(), "events/s")
	b.ReportMetric(float64(r.latencies[len(r.latencies)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(r.latencies[len(r.latencies)*99/100].Microseconds()), "p99-µs")
	var events, txs float64
	require.NoError(b, l.pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT transaction_id) FROM "+l.schema+".es_events WHERE id > $1", lastID).Scan(&events, &txs))
	b.ReportMetric(events/txs, "appends/tx")
	if r.serverCPU > 0 {
		// CPU time of the PostgreSQL backends serving the benchmark, per
		// append: the database's work, whatever else the machine runs.
		b.ReportMetric(float64(r.serverCPU.Microseconds())/float64(len(r.latencies)), "server-cpu-µs/op")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkGroupCommitRatio runs the plain-SQL baseline and grouped
// appends from 16 goroutines in alternating rounds of one second (the
// first of each pair alternates too), so that the machine's drift falls on
// both, and reports the median of the per-round throughput ratios. Set
// MEOWMX_BENCH_ROUNDS (default 8). Run with
//
//	go test -run '^$' -bench GroupCommitRatio -benchtime 1x ./meowmxpgx/
func BenchmarkGroupCommitRatio(b *testing.B) {
	const goroutines = 16
	rounds := envInt("MEOWMX_BENCH_ROUNDS", 8)
	for _, target := range []string{"new", "existing"} {
		b.Run("g=16/stream="+target, func(b *testing.B) {
			sql := newAppendLoad(b, goroutines, target, "sql-pipelined")
			grouped := newAppendLoad(b, goroutines, target, "meowmx-grouped")
			var ratios, sqlRates, groupedRates []float64
			for b.Loop() {
				for r := range rounds {
					var rs, rg float64
					if r%2 == 0 {
						rs, rg = sql.run(b, 0, time.Second).rate(), grouped.run(b, 0, time.Second).rate()
					} else {
						rg, rs = grouped.run(b, 0, time.Second).rate(), sql.run(b, 0, time.Second).rate()
					}
					sqlRates, groupedRates, ratios = append(sqlRates, rs), append(groupedRates, rg), append(ratios, rg/rs)
				}
			}
			median := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
			b.ReportMetric(median(ratios), "ratio-median")
			b.ReportMetric(slices.Min(ratios), "ratio-min")
			b.ReportMetric(median(sqlRates), "sql-events/s")
			b.ReportMetric(median(groupedRates), "grouped-events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// appendLoad is one mode of BenchmarkGroupCommit on a schema and pool of
// its own, ready to run several times.
type appendLoad struct {
	pool       *pgxpool.Pool
	schema     string // quoted
	appName    string // the pool's application_name, to find its backends
	goroutines int
	appendOne  func(g int) error
}

func newAppendLoad(b *testing.B, goroutines int, target, mode string) *appendLoad {
	ctx := context.Background()
	_, schema := dbtest.Schema(b)
	poolCfg, err := pgxpool.ParseConfig(dbtest.DatabaseURL())
	require.NoError(b, err)
	poolCfg.MaxConns = int32(goroutines + 2)
	appName := "meowmx-bench-" + uuid.NewString()[:8]
	poolCfg.ConnConfig.RuntimeParams["application_name"] = appName
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(b, err)
	gc := meowmx.GroupCommitConfig{Disabled: mode == "meowmx" || mode == "sql-pipelined"}
	if mode == "meowmx-grouped-window" {
		gc.Window = 500 * time.Microsecond
	}
	store, err := meowmx.NewStore(driver, &meowmx.Config{GroupCommit: gc})
	require.NoError(b, err)
	_, err = store.Migrate(ctx, nil)
	require.NoError(b, err)

	run := uuid.NewString()[:8]
	next := make([]int, goroutines)       // new streams: each goroutine's next one
	versions := make([]int64, goroutines) // existing streams: each goroutine's own, at version 0
	if target == "existing" {
		for g := range goroutines {
			_, err := store.Append(ctx, benchStream(run, g, 0), meowmx.NoStream, meowmx.EventData{Type: "Deposited", Data: json.RawMessage(benchPayload)})
			require.NoError(b, err)
		}
	}
	l := &appendLoad{pool: pool, schema: pgx.Identifier{schema}.Sanitize(), appName: appName, goroutines: goroutines}
	switch mode {
	case "sql-pipelined":
		l.appendOne = rawPipelined(pool, l.schema, run, target, next, versions)
	default:
		l.appendOne = func(g int) error {
			next[g]++
			stream, expected := benchStream(run, g, next[g]), meowmx.NoStream
			if target == "existing" {
				stream, expected = benchStream(run, g, 0), meowmx.Exact(versions[g])
			}
			_, err := store.Append(ctx, stream, expected, meowmx.EventData{Type: "Deposited", Data: json.RawMessage(benchPayload)})
			versions[g]++
			return err
		}
	}
	return l
}

// loadResult is the outcome of one appendLoad run.
type loadResult struct {
	elapsed   time.Duration
	latencies []time.Duration // sorted
	serverCPU time.Duration
}

func (r loadResult) rate() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

// run appends n times, or for d when n is 0, from l's goroutines.
func (l *appendLoad) run(b *testing.B, n int64, d time.Duration) loadResult {
	ctx := context.Background()
	var count atomic.Int64
	latencies := make([][]time.Duration, l.goroutines)
	var wg sync.WaitGroup
	serverCPU := backendCPU(ctx, l.pool, l.appName)
	start := time.Now()
	deadline := start.Add(d)
	for g := range l.goroutines {
		wg.Go(func() {
			for (n > 0 && count.Add(1) <= n) || (n == 0 && time.Now().Before(deadline)) {
				t0 := time.Now()
				if err := l.appendOne(g); err != nil {
					b.Error(err)
					return
				}
				latencies[g] = append(latencies[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(start), latencies: slices.Concat(latencies...)}
	r.serverCPU = backendCPU(ctx, l.pool, l.appName) - serverCPU
	slices.Sort(r.latencies)
	return r
}

// backendCPU sums the CPU time used so far by the PostgreSQL backends of
// the connections named appName, read from /proc: 0 when the server runs
// on another machine. It counts in clock ticks of 10ms.
func backendCPU(ctx context.Context, pool *pgxpool.Pool, appName string) time.Duration {
	rows, _ := pool.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1", appName)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0
	}
	var ticks int64
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0
		}
		// Fields after the command name (in parentheses): utime and stime
		// are the 14th and 15th fields of the line.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		for _, f := range fields[11:13] {
			n, _ := strconv.ParseInt(f, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

func benchStream(run string, g, i int) meowmx.StreamID {
	return meowmx.StreamID{Type: "Order", ID: fmt.Sprintf("ord-%s-%d-%d", run, g, i)}
}

// rawPipelined is the plain-SQL baseline: the statements of
// raw_new_stream_pipe.sql or raw_existing_stream_pipe.sql, in one round
// trip and one transaction per append.
func rawPipelined(pool *pgxpool.Pool, schema, run, target string, next []int, versions []int64) func(g int) error {
	ctx := context.Background()
	return func(g int) error {
		next[g]++
		id := benchStream(run, g, next[g]).ID
		from, to := int64(0), int64(1) // as raw_new_stream_pipe.sql
		if target == "existing" {
			id = benchStream(run, g, 0).ID
			from, to = versions[g], versions[g]+1
		}
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("INSERT INTO "+schema+".es_aggregates (id, version, aggregate_type) VALUES ($1, 0, 'Order') ON CONFLICT DO NOTHING", id)
		b.Queue("UPDATE "+schema+".es_aggregates SET version = $2 WHERE id = $1 AND version = $3", id, to, from)
		b.Queue("INSERT INTO "+schema+".es_events (transaction_id, aggregate_id, version, event_type, json_data) VALUES (pg_current_xact_id(), $1, $2, 'OrderPlaced', $3)", id, to, benchPayload)
		b.Queue("COMMIT")
		if err := pool.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		versions[g]++
		return nil
	}
}
