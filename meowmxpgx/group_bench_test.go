package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// benchChildEnv makes the child worker (see runChild) run the
// subscription "<name>" of BenchmarkGroup: "<kind>/<partitions>/<name>",
// kind "sleep" (1 ms an event, as a call to another service) or "noop".
const benchChildEnv = "MEOWMX_BENCH_GROUP_CHILD"

func benchChildConfig(spec string) *meowmx.SubscriptionConfig[pgx.Tx] {
	kind, rest, _ := strings.Cut(spec, "/")
	partitions, name, _ := strings.Cut(rest, "/")
	n, _ := strconv.Atoi(partitions)
	var d time.Duration
	if kind == "sleep" {
		d = time.Millisecond
	}
	return &meowmx.SubscriptionConfig[pgx.Tx]{Name: name, Partitions: n, StartFrom: meowmx.StartFrom{End: true},
		BatchSize: 1000, PollInterval: 10 * time.Millisecond,
		Handler: meowmx.HandlerFunc[pgx.Tx](func(context.Context, pgx.Tx, *meowmx.RecordedEvent) error {
			if d > 0 {
				time.Sleep(d)
			}
			return nil
		})}
}

// BenchmarkGroup measures a consumer group's catch-up over a backlog, its
// members in worker processes: one worker of a subscription without
// partitions, then a group of 8 partitions on 1, 2, 4 and 8 processes. The
// handler waits 1 ms an event ("sleep": I/O-bound; backlog
// MEOWMX_BENCH_SLEEP_EVENTS, default 16 000, in streams of 2) or does
// nothing ("noop": what partitioning costs; backlog MEOWMX_BENCH_EVENTS,
// default 100 000, in streams of 10). A group is as fast as its largest
// partition: the 8 000 streams of the sleep backlog give the largest of 8
// partitions 1 026 of them (a bound of 7.8x; 800 streams would bound it at
// 7.3x).
// Each run starts its workers at the head, waits until the group's
// partitions are spread over all of them, then resets the subscription to
// the start and times its catch-up. Run it with
//
//	go test -run '^$' -bench Group -benchtime 1x ./meowmxpgx/
func BenchmarkGroup(b *testing.B) {
	for _, kind := range []string{"sleep", "noop"} {
		n, perStream := envInt("MEOWMX_BENCH_EVENTS", 100_000), 10
		if kind == "sleep" {
			n, perStream = envInt("MEOWMX_BENCH_SLEEP_EVENTS", 16_000), 2
		}
		s, pool, schema := newSchemaStore(b, nil, nil)
		fillBacklog(b, pool, schema, n, perStream)
		for _, run := range []struct {
			name                string
			partitions, workers int
		}{{"single", 0, 1}, {"group-1", 8, 1}, {"group-2", 8, 2}, {"group-4", 8, 4}, {"group-8", 8, 8}} {
			b.Run(kind+"/"+run.name, func(b *testing.B) {
				for i := range b.N {
					name := fmt.Sprintf("%s-%s-%d", kind, run.name, i)
					var workers []*child
					for range run.workers {
						workers = append(workers, startBenchChild(b, schema, fmt.Sprintf("%s/%d/%s", kind, run.partitions, name)))
					}
					waitSpread(b, s, name, run.partitions, run.workers)
					if run.partitions > 0 {
						waitPartitionIndex(b, pool, schema, run.partitions)
					}
					start := time.Now()
					require.NoError(b, s.ResetSubscription(context.Background(), name, meowmx.Position{}))
					waitFor(b, s, name)
					el := time.Since(start)
					b.ReportMetric(float64(n)/el.Seconds(), "events/s")
					for _, w := range workers {
						w.kill()
					}
				}
			})
		}
	}
}

// fillBacklog writes n events over n/perStream streams of type cat with
// plain SQL, in one transaction.
func fillBacklog(b testing.TB, pool *pgxpool.Pool, schema string, n, perStream int) {
	b.Helper()
	ctx := context.Background()
	q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
	_, err := pool.Exec(ctx, `INSERT INTO `+q("es_aggregates")+` (id, version, aggregate_type)
		SELECT 'a' || g, $2::int - 1, 'cat' FROM generate_series(0, $1::int / $2::int - 1) g`, n, perStream)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `INSERT INTO `+q("es_events")+` (transaction_id, aggregate_id, version, event_type, json_data)
		SELECT pg_current_xact_id(), 'a' || (g % ($1::int / $2::int)), g / ($1::int / $2::int), 'Meowed',
			'{"n": 1, "text": "some payload of a typical size"}'
		FROM generate_series(0, $1::int - 1) g`, n, perStream)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `ANALYZE `+q("es_events")+`; ANALYZE `+q("es_aggregates"))
	require.NoError(b, err)
}

// waitPartitionIndex waits until the index of groups of n partitions,
// which their first member builds, is ready.
func waitPartitionIndex(b testing.TB, pool *pgxpool.Pool, schema string, n int) {
	b.Helper()
	name := pgx.Identifier{schema, fmt.Sprintf("es_events_partition_%d", n)}.Sanitize()
	require.Eventually(b, func() bool {
		var valid bool
		err := pool.QueryRow(context.Background(), `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, name).Scan(&valid)
		return err == nil && valid
	}, 5*time.Minute, 10*time.Millisecond, "the index %s is built", name)
}

// startBenchChild starts a worker process of BenchmarkGroup.
func startBenchChild(b testing.TB, schema, spec string) *child {
	return startChild(b, schema, benchChildEnv+"="+spec)
}

// waitSpread waits until every partition of the group name is owned and
// each of workers owns a share (or, without partitions, until it is
// owned).
func waitSpread(b testing.TB, s *meowmx.Store[pgx.Tx], name string, partitions, workers int) {
	b.Helper()
	require.Eventually(b, func() bool {
		subs, err := s.Subscriptions(context.Background())
		require.NoError(b, err)
		for _, sub := range subs {
			if sub.Name != name {
				continue
			}
			if partitions == 0 {
				return sub.Owner != nil
			}
			owners := map[string]int{}
			for _, p := range sub.PartitionInfos {
				if p.Owner == nil {
					return false
				}
				owners[p.Owner.ID]++
			}
			return len(owners) == workers
		}
		return false
	}, time.Minute, 10*time.Millisecond, "the workers of %s start", name)
}

// BenchmarkPartitionIndexAppend measures what the index of a consumer
// group (Driver.PartitionIndex) costs appends: 16 writers append one
// event each to new streams of a store with the index of groups of 8
// partitions and of one without, in rounds of 1 600 appends that
// alternate which store goes first. It reports appends/s on each and
// ratio (with the index over without).
func BenchmarkPartitionIndexAppend(b *testing.B) {
	ctx := context.Background()
	with, pool, schema := newSchemaStore(b, nil, nil)
	d, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(b, err)
	require.NoError(b, d.PartitionIndex(ctx, 8))
	without, _, _ := newSchemaStore(b, nil, nil)
	const writers, round = 16, 1600
	var tw, to time.Duration
	run := func(s *meowmx.Store[pgx.Tx], d *time.Duration, r int) {
		start := time.Now()
		var g errgroup.Group
		for w := range writers {
			g.Go(func() error {
				for i := range round / writers {
					id := meowmx.StreamID{Type: "cat", ID: fmt.Sprintf("r%d-w%d-%d", r, w, i)}
					if _, err := s.Append(ctx, id, meowmx.NoStream, meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{"n": 1}`)}); err != nil {
						return err
					}
				}
				return nil
			})
		}
		require.NoError(b, g.Wait())
		*d += time.Since(start)
	}
	b.ResetTimer()
	for r := range b.N {
		if r%2 == 0 {
			run(with, &tw, r)
			run(without, &to, r)
		} else {
			run(without, &to, r)
			run(with, &tw, r)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*round)/tw.Seconds(), "indexed-appends/s")
	b.ReportMetric(float64(b.N*round)/to.Seconds(), "plain-appends/s")
	b.ReportMetric(to.Seconds()/tw.Seconds(), "ratio")
}
