package meowmxsqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// Benchmarks of the connection strategies and of meowmx against the same
// work in plain SQL. Run (about 40 s):
//
//	go test -run '^$' -bench . -benchtime 2s ./meowmxsqlite/
//
// Strategies:
//   - open: as Open does, one write connection and a read pool of 4;
//   - pool8: one pool of 8 connections for everything: writers queue on
//     SQLite's busy handler, which sleeps and polls;
//   - pool1: one connection for everything, reads included.

// strategies open a migrated store on a new file with each strategy, all
// through New and one DSN, so that they differ in their pools only.
var strategies = []struct {
	name string
	open func(b *testing.B) *meowmx.Store[*sql.Tx]
}{
	{"open", func(b *testing.B) *meowmx.Store[*sql.Tx] {
		path := filepath.Join(b.TempDir(), "bench.db")
		d, err := meowmxsqlite.New(benchPool(b, path, 1, ""), &meowmxsqlite.Config{ReadDB: benchPool(b, path, 4, "&_pragma=query_only(1)")})
		require.NoError(b, err)
		return benchStore(b, d)
	}},
	{"pool8", func(b *testing.B) *meowmx.Store[*sql.Tx] {
		d, err := meowmxsqlite.New(benchPool(b, filepath.Join(b.TempDir(), "bench.db"), 8, ""), nil)
		require.NoError(b, err)
		return benchStore(b, d)
	}},
	{"pool1", func(b *testing.B) *meowmx.Store[*sql.Tx] {
		d, err := meowmxsqlite.New(benchPool(b, filepath.Join(b.TempDir(), "bench.db"), 1, ""), nil)
		require.NoError(b, err)
		return benchStore(b, d)
	}},
}

func benchPool(b *testing.B, path string, conns int, extra string) *sql.DB {
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate" + extra
	db, err := sql.Open("sqlite", dsn)
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db
}

// openBench opens a store as users do, with Open.
func openBench(b *testing.B) *meowmx.Store[*sql.Tx] {
	d, err := meowmxsqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = d.Close() })
	return benchStore(b, d)
}

func benchStore(b *testing.B, d *meowmxsqlite.Driver) *meowmx.Store[*sql.Tx] {
	b.Cleanup(func() { _ = d.Close() })
	s, err := meowmx.NewStore(d, nil)
	require.NoError(b, err)
	_, err = s.Migrate(context.Background(), nil)
	require.NoError(b, err)
	return s
}

// BenchmarkStrategy compares the connection strategies: 16 goroutines
// appending one event each to their own streams, to one shared stream, and
// half of them reading a stream of 100 events while the rest append.
func BenchmarkStrategy(b *testing.B) {
	ctx := context.Background()
	for _, st := range strategies {
		b.Run(st.name+"/own-streams", func(b *testing.B) {
			s := st.open(b)
			var n atomic.Int64
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprint("s-", n.Add(1))
				for v := int64(-1); pb.Next(); v++ {
					if _, err := s.Append(ctx, meowmx.StreamID{Type: "bench", ID: id}, meowmx.Exact(v), ev("E", `{"n":1}`)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
		b.Run(st.name+"/one-stream", func(b *testing.B) {
			s := st.open(b)
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Append(ctx, meowmx.StreamID{Type: "bench", ID: "one"}, meowmx.AnyVersion, ev("E", `{"n":1}`)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
		b.Run(st.name+"/read-write", func(b *testing.B) {
			s := st.open(b)
			events := make([]meowmx.EventData, 100)
			for i := range events {
				events[i] = ev("E", `{"n":1}`)
			}
			_, err := s.Append(ctx, meowmx.StreamID{Type: "bench", ID: "long"}, meowmx.NoStream, events...)
			require.NoError(b, err)
			var n, reads atomic.Int64
			b.SetParallelism(8)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				w := n.Add(1)
				id := fmt.Sprint("s-", w)
				for pb.Next() {
					if w%2 == 0 {
						if _, err := s.ReadStream(ctx, "long", nil); err != nil {
							b.Error(err)
							return
						}
						reads.Add(1)
						continue
					}
					if _, err := s.Append(ctx, meowmx.StreamID{Type: "bench", ID: id}, meowmx.AnyVersion, ev("E", `{"n":1}`)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			secs := time.Since(start).Seconds()
			b.ReportMetric(float64(reads.Load())/secs, "reads/s")
			b.ReportMetric(float64(int64(b.N)-reads.Load())/secs, "appends/s")
		})
	}
}

// BenchmarkAppend compares a single-event append to an existing stream,
// from one goroutine, with the same work written as plain SQL on the same
// kind of database: a BEGIN IMMEDIATE transaction that moves the version
// with a check and inserts the event. Each iteration does both, one after
// the other, so that a load that comes and goes on the machine weighs on
// both alike; it reports the time of each and their ratio.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	s := openBench(b)
	db := s.Driver().(*meowmxsqlite.Driver).DB()
	stream := meowmx.StreamID{Type: "bench", ID: "meowmx"}
	var v int64 = -1
	plain := func() error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx, `INSERT INTO es_aggregates (id, version, aggregate_type) VALUES ('plain', ?1 + 1, 'bench')
			ON CONFLICT (id) DO UPDATE SET version = ?1 + 1 WHERE version = ?1`, v)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("version conflict")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO es_events (aggregate_id, version, event_type, json_data) VALUES ('plain', ?, 'E', '{"n":1}')`, v+1); err != nil {
			return err
		}
		return tx.Commit()
	}
	var tm, tp time.Duration
	viaMeowmx := func() error {
		_, err := s.Append(ctx, stream, meowmx.Exact(v), ev("E", `{"n":1}`))
		return err
	}
	timed := func(fn func() error, total *time.Duration) {
		t0 := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		*total += time.Since(t0)
	}
	for i := 0; b.Loop(); i++ {
		// Which goes first alternates: the first of a pair may pay for
		// the WAL work the last commit left.
		if i%2 == 0 {
			timed(viaMeowmx, &tm)
			timed(plain, &tp)
		} else {
			timed(plain, &tp)
			timed(viaMeowmx, &tm)
		}
		v++
	}
	reportPair(b, tm, tp, 1, "appends/s")
}

// BenchmarkAppendParallel is BenchmarkAppend from 16 goroutines, each
// appending to a stream of its own: each iteration runs a round of
// appends through meowmx, then the same round in plain SQL, each round
// timed whole.
func BenchmarkAppendParallel(b *testing.B) {
	const goroutines, perRound = 16, 16
	ctx := context.Background()
	s := openBench(b)
	db := s.Driver().(*meowmxsqlite.Driver).DB()
	versions := make([]int64, goroutines) // of both streams of each goroutine
	for i := range versions {
		versions[i] = -1
	}
	round := func(fn func(g int, v int64) error) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for k := range perRound {
					if err := fn(g, versions[g]+int64(k)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	viaMeowmx := func(g int, v int64) error {
		_, err := s.Append(ctx, meowmx.StreamID{Type: "bench", ID: fmt.Sprint("m", g)}, meowmx.Exact(v), ev("E", `{"n":1}`))
		return err
	}
	plain := func(g int, v int64) error {
		id := fmt.Sprint("p", g)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx, `INSERT INTO es_aggregates (id, version, aggregate_type) VALUES (?2, ?1 + 1, 'bench')
			ON CONFLICT (id) DO UPDATE SET version = ?1 + 1 WHERE version = ?1`, v, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("version conflict")
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO es_events (aggregate_id, version, event_type, json_data) VALUES (?, ?, 'E', '{"n":1}')`, id, v+1); err != nil {
			return err
		}
		return tx.Commit()
	}
	var tm, tp time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tm += round(viaMeowmx)
			tp += round(plain)
		} else {
			tp += round(plain)
			tm += round(viaMeowmx)
		}
		for g := range versions {
			versions[g] += perRound
		}
	}
	reportPair(b, tm, tp, goroutines*perRound, "appends/s")
}

// reportPair reports the rates of meowmx and of plain SQL, n units an
// iteration, and the ratio meowmx/plain.
func reportPair(b *testing.B, meowmxTime, plainTime time.Duration, n int, unit string) {
	b.ReportMetric(float64(n*b.N)/meowmxTime.Seconds(), "meowmx-"+unit)
	b.ReportMetric(float64(n*b.N)/plainTime.Seconds(), "plain-"+unit)
	b.ReportMetric(plainTime.Seconds()/meowmxTime.Seconds(), "ratio")
}

// BenchmarkCatchUp reads one category of 10 000 events, out of 20 000, in
// pages of 1 000 (a subscriber catching up), with IterAll and with the
// same keyset query in plain SQL, alternately.
func BenchmarkCatchUp(b *testing.B) {
	ctx := context.Background()
	s := openBench(b)
	for i := range 200 {
		events := make([]meowmx.EventData, 100)
		for j := range events {
			events[j] = ev("E", `{"n":1,"text":"some payload of a typical size"}`)
		}
		typ := []string{"cat", "dog"}[i%2]
		_, err := s.Append(ctx, meowmx.StreamID{Type: typ, ID: fmt.Sprint(typ, i)}, meowmx.NoStream, events...)
		require.NoError(b, err)
	}
	const want = 10000
	db := s.Driver().(*meowmxsqlite.Driver).DB()
	plain := func() int {
		n, after := 0, int64(0)
		for {
			rows, err := db.QueryContext(ctx, `SELECT e.id, e.aggregate_id, e.version, e.event_type, e.json_data, e.metadata, e.created_at
				FROM es_events e CROSS JOIN es_aggregates a ON a.id = e.aggregate_id
				WHERE e.id > ? AND a.aggregate_type = 'cat' ORDER BY e.id LIMIT 1000`, after)
			require.NoError(b, err)
			page := 0
			for rows.Next() {
				var id, version int64
				var agg, typ, data, at string
				var meta *string
				require.NoError(b, rows.Scan(&id, &agg, &version, &typ, &data, &meta, &at))
				after = id
				page++
			}
			require.NoError(b, rows.Err())
			n += page
			if page < 1000 {
				return n
			}
		}
	}
	var tm, tp time.Duration
	for b.Loop() {
		t0 := time.Now()
		n := 0
		for _, err := range s.IterAll(ctx, &meowmx.ReadAllOpts{AggregateTypes: []string{"cat"}}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		t1 := time.Now()
		require.Equal(b, want, n)
		require.Equal(b, want, plain())
		tp += time.Since(t1)
		tm += t1.Sub(t0)
	}
	reportPair(b, tm, tp, want, "events/s")
}

func ev(typ, data string) meowmx.EventData {
	return meowmx.EventData{Type: typ, Data: []byte(data)}
}
