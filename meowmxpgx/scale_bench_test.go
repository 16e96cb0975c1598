package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/console"
	"github.com/meowmx/meowmx/internal/dbtest"
)

// scaleStore is one of BenchmarkScale's two stores.
type scaleStore struct {
	schema  string
	s       *meowmx.Store[pgx.Tx]
	console http.Handler
	middle  meowmx.Position // the event of version 500 of the category probe
	replay  *meowmx.Repository[benchCart, pgx.Tx]
	snap    *meowmx.Repository[benchCart, pgx.Tx]
}

// BenchmarkScale runs the operations whose work does not depend on the
// store's size on the two schemas that scripts/bench-scale fills, named
// by MEOWMX_BENCH_SCALE_SCHEMAS ("scale_empty,scale_full"): an empty
// store and one of millions of events, each holding the measured streams
// (a 10 000-event stream "long", a category "probe" of 1 000 events). Each
// iteration runs the operation once on each store, alternating which goes
// first, and reports empty-µs and full-µs (per operation) and ratio (full
// over empty). Skipped without the variable.
//
//	scripts/bench-scale 10000000
func BenchmarkScale(b *testing.B) {
	names := strings.Split(os.Getenv("MEOWMX_BENCH_SCALE_SCHEMAS"), ",")
	if len(names) != 2 {
		b.Skip("set MEOWMX_BENCH_SCALE_SCHEMAS=scale_empty,scale_full (see scripts/bench-scale)")
	}
	ctx := context.Background()
	pool := dbtest.Pool(b)
	reg := meowmx.NewRegistry()
	require.NoError(b, meowmx.RegisterEvent[benchItemAdded](reg, "ItemAdded"))
	var stores [2]*scaleStore
	for i, schema := range names {
		s := storeOn(b, pool, schema, nil, nil)
		st := &scaleStore{schema: schema, s: s}
		var err error
		st.console, err = console.New(s, console.Config{})
		require.NoError(b, err)
		mid, err := s.ReadStream(ctx, "cat-0", &meowmx.ReadStreamOpts{From: 500, Limit: 1})
		require.NoError(b, err)
		require.Len(b, mid, 1, "schema %s holds the category probe (scripts/bench-scale)", schema)
		st.middle = mid[0].Position
		st.replay, err = meowmx.NewRepository[benchCart](s, "cart", reg, nil)
		require.NoError(b, err)
		st.snap, err = meowmx.NewRepository[benchCart](s, "cart", reg, &meowmx.RepositoryConfig{SnapshotEvery: 1000})
		require.NoError(b, err)
		// Two carts of 1 000 events; one with a snapshot at version 989,
		// 10 events back.
		for _, id := range []string{"cart-replay", "cart-snap"} {
			if _, err := s.Stream(ctx, id); err == nil {
				continue // made by an earlier run
			}
			batch := make([]meowmx.EventData, 1000)
			for j := range batch {
				batch[j], err = reg.Encode(benchItemAdded{SKU: fmt.Sprintf("sku-%d", j%50), Quantity: 1})
				require.NoError(b, err)
			}
			_, err = s.Append(ctx, meowmx.StreamID{Type: "cart", ID: id}, meowmx.NoStream, batch[:989]...)
			require.NoError(b, err)
			if id == "cart-snap" {
				a, err := st.snap.Load(ctx, id, nil)
				require.NoError(b, err)
				require.NoError(b, a.Emit(benchItemAdded{SKU: "sku-x", Quantity: 1}))
				require.NoError(b, st.snap.Save(ctx, a)) // the snapshot, at version 989
				batch = batch[1:]
			}
			_, err = s.Append(ctx, meowmx.StreamID{Type: "cart", ID: id}, meowmx.AnyVersion, batch[989:]...)
			require.NoError(b, err)
		}
		// A subscription far behind, for the lag listing.
		if err := s.ResetSubscription(ctx, "behind", meowmx.Position{}); err != nil {
			sctx, cancel := context.WithCancel(ctx)
			_ = s.RunSubscription(sctx, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "behind",
				Handler: meowmx.HandlerFunc[pgx.Tx](func(context.Context, pgx.Tx, *meowmx.RecordedEvent) error {
					cancel()
					return nil
				})})
		}
		// On the full store, half of it; on the empty one, at the start:
		// both beyond meowmx.LagCountMax, so that both count as far.
		var behind meowmx.Position
		if i == 1 {
			require.NoError(b, pool.QueryRow(ctx, `SELECT transaction_id, id FROM `+pgx.Identifier{schema, "es_events"}.Sanitize()+`
				WHERE id >= (SELECT max(id) / 2 FROM `+pgx.Identifier{schema, "es_events"}.Sanitize()+`) ORDER BY id LIMIT 1`).
				Scan(&behind.TransactionID, &behind.EventID))
		}
		require.NoError(b, s.ResetSubscription(ctx, "behind", behind))
		stores[i] = st
	}
	event := meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{"n": 1, "pad": "some payload of a typical size"}`)}
	var seq atomic.Int64
	// New streams' ids sort after every stored id, in both stores (a
	// store's ids of a growing sequence); newUUID's anywhere among them.
	newID := func() meowmx.StreamID {
		return meowmx.StreamID{Type: "new", ID: fmt.Sprintf("znew-%d-%d", time.Now().UnixNano(), seq.Add(1))}
	}
	newUUID := func() meowmx.StreamID { return meowmx.StreamID{Type: "new", ID: uuid.NewString()} }
	appends := func(st *scaleStore, id func() meowmx.StreamID) error {
		var g errgroup.Group
		for range 16 {
			g.Go(func() error {
				for range 10 {
					if _, err := st.s.Append(ctx, id(), meowmx.NoStream, event); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return g.Wait()
	}
	countAll := func(st *scaleStore, opts *meowmx.ReadAllOpts, want int) error {
		n := 0
		for _, err := range st.s.IterAll(ctx, opts) {
			if err != nil {
				return err
			}
			n++
		}
		if n != want {
			return fmt.Errorf("read %d events, want %d", n, want)
		}
		return nil
	}
	page := func(st *scaleStore, path string) error {
		rec := httptest.NewRecorder()
		st.console.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("%s: %d", path, rec.Code)
		}
		return nil
	}
	ops := []struct {
		name string
		n    int // operations per call
		op   func(st *scaleStore) error
	}{
		{"Append/1-writer", 1, func(st *scaleStore) error {
			_, err := st.s.Append(ctx, newID(), meowmx.NoStream, event)
			return err
		}},
		{"Append/16-writers", 160, func(st *scaleStore) error { return appends(st, newID) }},
		{"Append/16-writers-uuid", 160, func(st *scaleStore) error { return appends(st, newUUID) }},
		{"Append/10k-stream", 1, func(st *scaleStore) error {
			_, err := st.s.Append(ctx, meowmx.StreamID{Type: "measured", ID: "long"}, meowmx.AnyVersion, event)
			return err
		}},
		{"ReadStream/last-10", 1, func(st *scaleStore) error {
			evs, err := st.s.ReadStream(ctx, "long", &meowmx.ReadStreamOpts{Backward: true, Limit: 10})
			if err == nil && len(evs) != 10 {
				err = fmt.Errorf("read %d events", len(evs))
			}
			return err
		}},
		{"ReadStream/10k-events", 1, func(st *scaleStore) error {
			evs, err := st.s.ReadStream(ctx, "long", &meowmx.ReadStreamOpts{Limit: 10_000})
			if err == nil && len(evs) != 10_000 {
				err = fmt.Errorf("read %d events", len(evs))
			}
			return err
		}},
		{"Aggregate/replay-1000", 1, func(st *scaleStore) error {
			_, err := st.replay.Load(ctx, "cart-replay", nil)
			return err
		}},
		{"Aggregate/snapshot+10", 1, func(st *scaleStore) error {
			_, err := st.snap.Load(ctx, "cart-snap", nil)
			return err
		}},
		{"Category/from-start-1000", 1, func(st *scaleStore) error {
			return countAll(st, &meowmx.ReadAllOpts{AggregateTypes: []string{"probe"}}, 1000)
		}},
		{"Category/from-middle-499", 1, func(st *scaleStore) error {
			return countAll(st, &meowmx.ReadAllOpts{AggregateTypes: []string{"probe"}, After: st.middle}, 499)
		}},
		{"Subscriptions/half-behind", 1, func(st *scaleStore) error {
			_, err := st.s.Subscriptions(ctx)
			return err
		}},
		{"Console/stream", 1, func(st *scaleStore) error { return page(st, "/stream?id=long") }},
		{"Console/log", 1, func(st *scaleStore) error { return page(st, "/log") }},
		{"Console/log-category", 1, func(st *scaleStore) error { return page(st, "/log?type=probe") }},
		{"Console/subscriptions", 1, func(st *scaleStore) error { return page(st, "/subscriptions") }},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			var took [2]time.Duration
			timed := func(i int) {
				start := time.Now()
				if err := o.op(stores[i]); err != nil {
					b.Fatalf("%s: %v", stores[i].schema, err)
				}
				took[i] += time.Since(start)
			}
			for i := range 3 { // warm both up
				require.NoError(b, o.op(stores[i%2]))
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				timed(i % 2)
				timed(1 - i%2)
			}
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N*o.n) }
			b.ReportMetric(per(took[0]), "empty-µs")
			b.ReportMetric(per(took[1]), "full-µs")
			b.ReportMetric(took[1].Seconds()/took[0].Seconds(), "ratio")
		})
	}
}

// BenchmarkBytesPerEvent fills 100 000 events of the reference payload
// (benchPayload, in 1 000 streams of 100) into meowmx's tables, into
// Message DB's messages table with its indexes, and into a plain table
// with only what an event store needs (a position and one row per stream
// version), and reports each one's bytes per event on disk: table (with
// TOAST) and indexes; meowmx's es_aggregates counted in. Run it with
// -benchtime 1x.
func BenchmarkBytesPerEvent(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	_, pool, schema := newSchemaStore(b, nil, nil)
	q := func(t string) string { return pgx.Identifier{schema, t}.Sanitize() }
	for _, sql := range []string{
		`INSERT INTO ` + q("es_aggregates") + ` (id, version, aggregate_type)
			SELECT 'order-' || g, 99, 'order' FROM generate_series(0, 999) g`,
		`INSERT INTO ` + q("es_events") + ` (transaction_id, aggregate_id, version, event_type, json_data, aggregate_type)
			SELECT pg_current_xact_id(), 'order-' || (g % 1000), g / 1000, 'OrderPlaced', $1::json, 'order'
			FROM generate_series(0, 99999) g`,
		// Message DB 1.3's messages table and indexes, restated.
		`CREATE TABLE ` + q("messages") + ` (
			global_position bigserial PRIMARY KEY, position bigint NOT NULL,
			time timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'), stream_name text NOT NULL,
			type text NOT NULL, data jsonb, metadata jsonb, id uuid NOT NULL DEFAULT gen_random_uuid())`,
		`CREATE UNIQUE INDEX messages_id ON ` + q("messages") + ` (id)`,
		`CREATE UNIQUE INDEX messages_stream ON ` + q("messages") + ` (stream_name, position)`,
		`CREATE INDEX messages_category ON ` + q("messages") + ` (split_part(stream_name, '-', 1), global_position,
			split_part(metadata->>'correlationStreamName', '-', 1))`,
		`INSERT INTO ` + q("messages") + ` (stream_name, type, position, data)
			SELECT 'order-' || (g % 1000), 'OrderPlaced', g / 1000, $1::jsonb FROM generate_series(0, 99999) g`,
		// The least an event store needs.
		`CREATE TABLE ` + q("plain") + ` (id bigserial PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL,
			type text NOT NULL, data jsonb NOT NULL, UNIQUE (stream_id, version))`,
		`INSERT INTO ` + q("plain") + ` (stream_id, version, type, data)
			SELECT 'order-' || (g % 1000), g / 1000, 'OrderPlaced', $1::jsonb FROM generate_series(0, 99999) g`,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = append(args, benchPayload)
		}
		_, err := pool.Exec(ctx, sql, args...)
		require.NoError(b, err, sql)
	}
	size := func(tables ...string) (table, index float64) {
		for _, t := range tables {
			_, err := pool.Exec(ctx, `VACUUM ANALYZE `+q(t))
			require.NoError(b, err)
			var tb, ib int64
			require.NoError(b, pool.QueryRow(ctx, `SELECT pg_table_size($1::regclass), pg_indexes_size($1::regclass)`, q(t)).Scan(&tb, &ib))
			table, index = table+float64(tb)/n, index+float64(ib)/n
		}
		return table, index
	}
	for b.Loop() {
	}
	for _, s := range []struct {
		name   string
		tables []string
	}{{"meowmx", []string{"es_events", "es_aggregates"}}, {"messagedb", []string{"messages"}}, {"plain", []string{"plain"}}} {
		t, i := size(s.tables...)
		b.ReportMetric(t, s.name+"-table-B/event")
		b.ReportMetric(i, s.name+"-index-B/event")
		b.ReportMetric(t+i, s.name+"-B/event")
	}
	rows, err := pool.Query(ctx, `SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass ORDER BY 2 DESC`, q("es_events"))
	require.NoError(b, err)
	for rows.Next() {
		var name string
		var bytes int64
		require.NoError(b, rows.Scan(&name, &bytes))
		b.Logf("es_events index %s: %.1f B/event", name, float64(bytes)/n)
	}
	require.NoError(b, rows.Err())
}
