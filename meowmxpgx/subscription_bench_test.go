package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// Subscription benchmarks. Run them with
//
//	go test -run '^$' -bench 'Subscription' -benchtime 1x ./meowmxpgx/
//
// MEOWMX_BENCH_EVENTS sets the catch-up backlog (default 100 000) and
// MEOWMX_BENCH_SECONDS the duration of each append run (default 5).

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkSubscriptionLatency measures the delay from an append's commit
// (Append has returned) to the handler, one event at a time, with the
// writer in another store (another process: the wake-up is a NOTIFY) and in
// the same store (woken in-process).
func BenchmarkSubscriptionLatency(b *testing.B) {
	for _, mode := range []string{"other-store", "same-store"} {
		b.Run(mode, func(b *testing.B) {
			s, pool, schema := newSchemaStore(b, nil, nil)
			writer := s
			if mode == "other-store" {
				writer = storeOn(b, pool, schema, nil, nil)
			}
			got := make(chan time.Time, 1)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- s.RunSubscription(ctx, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "latency",
					BatchHandler: meowmx.BatchHandlerFunc[pgx.Tx](func(context.Context, pgx.Tx, []*meowmx.RecordedEvent) error {
						got <- time.Now()
						return nil
					})})
			}()
			defer func() { cancel(); <-done }()
			require.NoError(b, s.WaitForSubscription(ctx, "latency"))
			var lat []time.Duration
			data := meowmx.EventData{Type: "Ping", Data: json.RawMessage(`{}`)}
			for i := 0; b.Loop(); i++ {
				_, err := writer.Append(ctx, meowmx.StreamID{Type: "ping", ID: "p"}, meowmx.AnyVersion, data)
				committed := time.Now()
				require.NoError(b, err)
				lat = append(lat, (<-got).Sub(committed))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkSubscriptionCatchUp reads a backlog of one category, mixed with
// as many events of another, with the raw keyset query (pgx, 1 000 a page,
// the driver's own SQL) and with a subscription whose batch handler does
// nothing, side by side, and reports both rates and their ratio. The
// subscription's time includes its start (startup-ms: from RunSubscription
// to the first handler call, the first page read included).
func BenchmarkSubscriptionCatchUp(b *testing.B) {
	n := envInt("MEOWMX_BENCH_EVENTS", 100_000)
	s, pool, schema := newSchemaStore(b, nil, nil)
	ctx := context.Background()
	q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
	_, err := pool.Exec(ctx, `INSERT INTO `+q("es_aggregates")+` (id, version, aggregate_type)
		SELECT 'a' || g, 99, CASE WHEN g % 2 = 0 THEN 'cat' ELSE 'dog' END FROM generate_series(1, $1::int / 100) g`, 2*n)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `INSERT INTO `+q("es_events")+` (transaction_id, aggregate_id, version, event_type, json_data)
		SELECT pg_current_xact_id(), 'a' || (g / 100 + 1), g % 100, 'Meowed', '{"n": 1, "text": "some payload of a typical size"}'
		FROM generate_series(0, $1::int - 1) g`, 2*n)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `ANALYZE `+q("es_events")+`; ANALYZE `+q("es_aggregates"))
	require.NoError(b, err)
	for {
		evs, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{AggregateTypes: []string{"cat"}, Limit: 1})
		require.NoError(b, err)
		if len(evs) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The driver's query of one category: the event's own aggregate_type
	// column (migration 011), no join.
	raw := `SELECT e.id, e.transaction_id, e.aggregate_id::text, e.aggregate_type, e.version,
			e.event_type, e.json_data, e.metadata, e.event_uuid, e.created_at
		FROM ` + q("es_events") + ` e
		WHERE (e.transaction_id, e.id) > ($1::xid8, $2::bigint)
		  AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
		  AND e.aggregate_type = ($4::text[])[1]
		ORDER BY e.transaction_id, e.id LIMIT $3`
	// rawPass reads the category page by page; it returns its time and
	// the time after its first page.
	rawPass := func() (total, steady time.Duration) {
		start := time.Now()
		var firstPage time.Time
		var tx uint64
		var id int64
		read := 0
		for {
			rows, err := pool.Query(ctx, raw, tx, id, 1000, []string{"cat"})
			require.NoError(b, err)
			k := 0
			for rows.Next() {
				var (
					aggID, aggType, evType string
					version                int64
					data, meta             []byte
					u                      []byte
					at                     time.Time
				)
				require.NoError(b, rows.Scan(&id, &tx, &aggID, &aggType, &version, &evType, &data, &meta, &u, &at))
				k++
			}
			require.NoError(b, rows.Err())
			if firstPage.IsZero() {
				firstPage = time.Now()
			}
			read += k
			if k < 1000 {
				break
			}
		}
		require.Equal(b, n, read)
		return time.Since(start), time.Since(firstPage)
	}
	// subPass runs a new subscription until it has handled the category;
	// it returns its time and the time after its first handler call.
	subPass := func(name string) (total, steady time.Duration) {
		var handled atomic.Int64
		var first atomic.Int64 // unix nanos of the first handler call
		all := make(chan struct{})
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			done <- s.RunSubscription(sctx, &meowmx.SubscriptionConfig[pgx.Tx]{Name: name, AggregateTypes: []string{"cat"},
				BatchHandler: meowmx.BatchHandlerFunc[pgx.Tx](func(_ context.Context, _ pgx.Tx, evs []*meowmx.RecordedEvent) error {
					first.CompareAndSwap(0, time.Now().UnixNano())
					if handled.Add(int64(len(evs))) == int64(n) {
						close(all)
					}
					return nil
				})})
		}()
		<-all
		end := time.Now()
		cancel()
		require.NoError(b, <-done)
		return end.Sub(start), end.Sub(time.Unix(0, first.Load()))
	}

	var rawTime, subTime, startup time.Duration
	var ratios, steadyRatios []float64
	for i := 0; b.Loop(); i++ {
		// Alternate which goes first, against drift in the machine's speed.
		var rawTotal, rawSteady, subTotal, subSteady time.Duration
		if i%2 == 0 {
			rawTotal, rawSteady = rawPass()
			subTotal, subSteady = subPass(fmt.Sprint("catchup-", i))
		} else {
			subTotal, subSteady = subPass(fmt.Sprint("catchup-", i))
			rawTotal, rawSteady = rawPass()
		}
		rawTime += rawTotal
		subTime += subTotal
		startup += subTotal - subSteady
		ratios = append(ratios, rawTotal.Seconds()/subTotal.Seconds())
		steadyRatios = append(steadyRatios, rawSteady.Seconds()/subSteady.Seconds())
	}
	slices.Sort(ratios)
	slices.Sort(steadyRatios)
	b.ReportMetric(ratios[len(ratios)/2], "ratio-median")
	b.ReportMetric(steadyRatios[len(steadyRatios)/2], "steady-ratio-median")
	rawRate := float64(n*b.N) / rawTime.Seconds()
	subRate := float64(n*b.N) / subTime.Seconds()
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(subRate, "sub-events/s")
	b.ReportMetric(subRate/rawRate, "ratio")
	b.ReportMetric(float64(startup.Milliseconds())/float64(b.N), "startup-ms")
}

// BenchmarkSubscriptionAppendCost measures 16 writers appending single
// events to existing streams, in the same run: with notifications off, on,
// and on with a subscriber (in another store) handling the events, and
// reports the ratios to "off".
func BenchmarkSubscriptionAppendCost(b *testing.B) {
	secs := time.Duration(envInt("MEOWMX_BENCH_SECONDS", 5)) * time.Second
	const writers = 16
	rate := func(notify, subscriber bool) float64 {
		var scfg *meowmx.Config
		if ms := envInt("MEOWMX_BENCH_NOTIFY_INTERVAL_MS", 0); ms > 0 {
			scfg = &meowmx.Config{NotifyInterval: time.Duration(ms) * time.Millisecond}
		}
		s, pool, schema := newSchemaStore(b, &meowmxpgx.Config{DisableNotify: !notify}, scfg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if subscriber {
			sub := storeOn(b, pool, schema, nil, nil)
			done := make(chan error, 1)
			go func() {
				done <- sub.RunSubscription(ctx, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "cost",
					BatchHandler: meowmx.BatchHandlerFunc[pgx.Tx](func(context.Context, pgx.Tx, []*meowmx.RecordedEvent) error { return nil })})
			}()
			defer func() { cancel(); <-done }()
		}
		data := meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{}`)}
		for w := range writers {
			_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: fmt.Sprint("w", w)}, meowmx.NoStream, data)
			require.NoError(b, err)
		}
		var total atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(secs)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for v := int64(0); time.Now().Before(deadline); v++ {
					_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: fmt.Sprint("w", w)}, meowmx.Exact(v), data)
					if err != nil {
						b.Error(err)
						return
					}
					total.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(total.Load()) / secs.Seconds()
	}
	var off, on, sub float64
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // alternate the order, so that drift in the machine's load cancels out
			off += rate(false, false)
			on += rate(true, false)
			sub += rate(true, true)
		} else {
			sub += rate(true, true)
			on += rate(true, false)
			off += rate(false, false)
		}
	}
	b.ReportMetric(off/float64(b.N), "off-appends/s")
	b.ReportMetric(on/float64(b.N), "notify-appends/s")
	b.ReportMetric(sub/float64(b.N), "notify+sub-appends/s")
	b.ReportMetric(on/off, "notify-ratio")
	b.ReportMetric(sub/off, "notify+sub-ratio")
}
