package meowmx

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/internal/pgcluster"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// telemetryModes are what BenchmarkTelemetryOverhead compares: no
// telemetry at all (the code paths skipped, as before it existed), no-op
// providers (what a user who sets none gets), and the SDK recording every
// span (always sampled, batched to an exporter that drops them) and every
// metric (a manual reader, never collected), and the SDK sampling no span
// (its metrics recorded).
var telemetryModes = []string{"off", "noop", "sdk", "sdk-unsampled"} //nolint:gochecknoglobals // the benchmark's table

// benchEnvInt reads a positive integer from the environment.
func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchTelemetryStores returns a store per mode, all on one PostgreSQL
// schema of their own and one pool, on the server at url.
func benchTelemetryStores(b *testing.B, url string, conns int32) (map[string]*Store[pgx.Tx], *pgxpool.Pool, string) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(b, err)
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	schema := fmt.Sprintf("meowmx_bench_tel_%d", time.Now().UnixNano())
	_, err = pool.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(b, err)
	b.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(b, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = unsampled.Shutdown(context.Background()) })
	stores := map[string]*Store[pgx.Tx]{}
	for _, mode := range telemetryModes {
		cfg := &Config{}
		switch mode {
		case "noop", "off":
			cfg.TracerProvider, cfg.MeterProvider = noop.NewTracerProvider(), metricnoop.NewMeterProvider()
		case "sdk":
			cfg.TracerProvider, cfg.MeterProvider = tp, mp
		case "sdk-unsampled":
			cfg.TracerProvider, cfg.MeterProvider = unsampled, mp
		}
		s, err := NewStore(driver, cfg)
		require.NoError(b, err)
		if mode == "off" {
			s.tel = nil // the store without telemetry
			s.group.onBatch = nil
		}
		b.Cleanup(func() { _ = s.Close(context.Background()) })
		stores[mode] = s
	}
	_, err = stores["off"].Migrate(ctx, nil)
	require.NoError(b, err)
	return stores, pool, schema
}

// rotated returns the modes in the order of round r: each goes first in
// turn, so that the machine's drift falls on all.
func rotated(r int) []string {
	out := slices.Clone(telemetryModes)
	k := r % len(out)
	return append(out[k:], out[:k]...)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkTelemetryOverhead measures what the telemetry costs, in one
// run, in rounds that alternate the modes (telemetryModes):
//
//   - append16: 16 goroutines appending single events to a stream each
//     (exact expected version, group commit on) for one second per mode
//     and round;
//   - catchup: a new subscription, with a batch handler that does nothing,
//     handling a backlog of MEOWMX_BENCH_EVENTS events (20 000), each with
//     a traceparent in its metadata (so that the SDK's handler spans carry
//     links).
//
// It reports, per mode, the median rate and the median of the per-round
// ratios to "off", and the allocations and CPU time (this process's) per
// append or per event. It runs on a PostgreSQL server of its own
// (internal/pgcluster), so that other sessions' transactions on a shared
// server do not hold its horizon back; with MEOWMX_BENCH_SHARED=1, on the
// test database. Set MEOWMX_BENCH_ROUNDS (default 6). Run with
//
//	go test -run '^$' -bench TelemetryOverhead -benchtime 1x .
func BenchmarkTelemetryOverhead(b *testing.B) {
	rounds := benchEnvInt("MEOWMX_BENCH_ROUNDS", 6)
	url := dbtest.DatabaseURL()
	if os.Getenv("MEOWMX_BENCH_SHARED") == "" {
		url = pgcluster.Start(b).URL()
	}
	b.Run("append16", func(b *testing.B) {
		const writers = 16
		stores, _, _ := benchTelemetryStores(b, url, writers+4)
		ctx := context.Background()
		data := EventData{Type: "Deposited", Data: json.RawMessage(`{"amount": 10, "note": "a payload of a typical size"}`)}
		versions := map[string][]int64{}
		for _, mode := range telemetryModes {
			versions[mode] = make([]int64, writers)
			for g := range writers {
				_, err := stores[mode].Append(ctx, StreamID{Type: "acct", ID: fmt.Sprintf("%s-%d", mode, g)}, NoStream, data)
				require.NoError(b, err)
			}
		}
		// pass appends for d from every writer, and returns the appends
		// per second and the allocations and CPU time per append.
		pass := func(mode string, d time.Duration) passResult {
			s, vs := stores[mode], versions[mode]
			var n atomic.Int64
			var wg sync.WaitGroup
			m := startMeasure()
			deadline := time.Now().Add(d)
			for g := range writers {
				wg.Go(func() {
					stream := StreamID{Type: "acct", ID: fmt.Sprintf("%s-%d", mode, g)}
					for time.Now().Before(deadline) {
						if _, err := s.Append(ctx, stream, Exact(vs[g]), data); err != nil {
							b.Error(err)
							return
						}
						vs[g]++
						n.Add(1)
					}
				})
			}
			wg.Wait()
			return m.end(int(n.Load()))
		}
		report(b, rounds, "append", func(mode string) passResult { return pass(mode, time.Second) })
	})
	b.Run("catchup", func(b *testing.B) {
		n := benchEnvInt("MEOWMX_BENCH_EVENTS", 20_000)
		stores, pool, schema := benchTelemetryStores(b, url, 8)
		ctx := context.Background()
		q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
		_, err := pool.Exec(ctx, `INSERT INTO `+q("es_aggregates")+` (id, version, aggregate_type)
			SELECT 'a' || g, 99, 'cat' FROM generate_series(1, $1::int / 100) g`, n)
		require.NoError(b, err)
		_, err = pool.Exec(ctx, `INSERT INTO `+q("es_events")+` (transaction_id, aggregate_id, version, event_type, json_data, metadata)
			SELECT pg_current_xact_id(), 'a' || (g / 100 + 1), g % 100, 'Meowed', '{"n": 1, "text": "some payload of a typical size"}',
				'{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
			FROM generate_series(0, $1::int - 1) g`, n)
		require.NoError(b, err)
		_, err = pool.Exec(ctx, `ANALYZE `+q("es_events"))
		require.NoError(b, err)
		for { // until the backlog is below the horizon (other sessions may hold it back)
			evs, err := stores["off"].ReadAll(ctx, &ReadAllOpts{Limit: 1})
			require.NoError(b, err)
			if len(evs) > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		passes := 0
		// pass runs a new subscription until it has handled the backlog,
		// and returns the events per second and the allocations and CPU
		// time per event.
		pass := func(mode string) passResult {
			passes++
			var handled atomic.Int64
			all := make(chan struct{})
			sctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			m := startMeasure()
			go func() {
				done <- stores[mode].RunSubscription(sctx, &SubscriptionConfig[pgx.Tx]{Name: fmt.Sprint("catchup-", passes),
					BatchHandler: BatchHandlerFunc[pgx.Tx](func(_ context.Context, _ pgx.Tx, evs []*RecordedEvent) error {
						if handled.Add(int64(len(evs))) == int64(n) {
							close(all)
						}
						return nil
					})})
			}()
			<-all
			r := m.end(n)
			cancel()
			require.NoError(b, <-done)
			return r
		}
		report(b, rounds, "event", pass)
	})
}

// passResult is one pass of a mode: its rate, and its allocations and
// CPU time (this process's, user and system) per operation.
type passResult struct{ rate, allocs, cpuMicros float64 }

// measure measures a pass.
type measure struct {
	start time.Time
	mem   runtime.MemStats
	cpu   time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startMeasure() *measure {
	m := &measure{}
	runtime.ReadMemStats(&m.mem)
	m.cpu = processCPU()
	m.start = time.Now()
	return m
}

// end ends a pass of n operations.
func (m *measure) end(n int) passResult {
	el := time.Since(m.start)
	cpu := processCPU() - m.cpu
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return passResult{rate: float64(n) / el.Seconds(), allocs: float64(after.Mallocs-m.mem.Mallocs) / float64(n),
		cpuMicros: float64(cpu.Microseconds()) / float64(n)}
}

// report runs pass for every mode in rounds and reports, per mode, the
// medians of the rate, the allocations and CPU time per op, and of the
// per-round ratios of rate and CPU time to "off".
func report(b *testing.B, rounds int, op string, pass func(mode string) passResult) {
	results, ratios, cpuRatios := map[string][]passResult{}, map[string][]float64{}, map[string][]float64{}
	for b.Loop() {
		for r := range rounds {
			got := map[string]passResult{}
			for _, mode := range rotated(r) {
				got[mode] = pass(mode)
				results[mode] = append(results[mode], got[mode])
			}
			for _, mode := range telemetryModes {
				ratios[mode] = append(ratios[mode], got[mode].rate/got["off"].rate)
				cpuRatios[mode] = append(cpuRatios[mode], got[mode].cpuMicros/got["off"].cpuMicros)
			}
		}
	}
	field := func(rs []passResult, f func(passResult) float64) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = f(r)
		}
		return out
	}
	for _, mode := range telemetryModes {
		rs := results[mode]
		b.ReportMetric(median(field(rs, func(r passResult) float64 { return r.rate })), mode+"-"+op+"s/s")
		b.ReportMetric(median(field(rs, func(r passResult) float64 { return r.allocs })), mode+"-allocs/"+op)
		b.ReportMetric(median(field(rs, func(r passResult) float64 { return r.cpuMicros })), mode+"-cpu-µs/"+op)
		if mode != "off" {
			b.ReportMetric(median(ratios[mode]), mode+"/off-rate-median")
			b.ReportMetric(median(cpuRatios[mode]), mode+"/off-cpu-median")
		}
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkTelemetryHooks measures the telemetry's own work for one
// append (its span or its absence, the latency histogram, the events
// counter, a batch size) and for one handler call on one event (a page
// read's span, the handler's span and histogram, the handled counter),
// without the database: what each mode adds to the operations of
// BenchmarkTelemetryOverhead.
func BenchmarkTelemetryHooks(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	noopTel, err := newTelemetry(noop.NewTracerProvider(), metricnoop.NewMeterProvider(), "postgres")
	require.NoError(b, err)
	globalTel, err := newTelemetry(nil, nil, "postgres")
	require.NoError(b, err)
	sdkTel, err := newTelemetry(tp, mp, "postgres")
	require.NoError(b, err)
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = unsampled.Shutdown(context.Background()) })
	unsampledTel, err := newTelemetry(unsampled, mp, "postgres")
	require.NoError(b, err)
	ctx := context.Background()
	res := &AppendResult{Version: 1, Events: []AppendedEvent{{Version: 1}}}
	evs := []*RecordedEvent{{Metadata: []byte(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)}}
	for _, c := range []struct {
		name string
		tel  *telemetry
	}{{"off", nil}, {"noop", noopTel}, {"global-unset", globalTel}, {"sdk", sdkTel}, {"sdk-unsampled", unsampledTel}} {
		b.Run("append/"+c.name, func(b *testing.B) {
			tel := c.tel
			md := [][]byte{nil}
			b.ReportAllocs()
			for b.Loop() {
				actx, a := tel.startAppend(ctx, "append", StreamID{Type: "cat", ID: "x"}, AnyVersion, 1)
				if a.span != nil {
					md[0] = nil
					injectTrace(md, a.span.SpanContext())
				}
				tel.recordBatch(4)
				tel.endAppend(actx, a, res, 4, nil)
			}
		})
		b.Run("handle/"+c.name, func(b *testing.B) {
			st := c.tel.track("view", 0, 0)
			defer st.untrack()
			b.ReportAllocs()
			for b.Loop() {
				rctx, span := st.startRead(ctx, Position{})
				endRead(span, 1, nil)
				hctx, h := st.startHandler(ctx, evs, 0)
				st.endHandler(hctx, h, nil)
				_ = rctx
				st.handledN(ctx, 1)
			}
		})
	}
}
