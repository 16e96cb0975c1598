package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

type benchItemAdded struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

type benchCart struct {
	Items map[string]int
	Lines int
}

func (c *benchCart) Apply(ev any) error {
	e, ok := ev.(benchItemAdded)
	if !ok {
		return fmt.Errorf("unexpected %T", ev)
	}
	if c.Items == nil {
		c.Items = map[string]int{}
	}
	c.Items[e.SKU] += e.Quantity
	c.Lines++
	return nil
}

// BenchmarkAggregateLoad loads a cart aggregate of 10 000 events: by full
// replay, from a snapshot at its last event, and from a snapshot 500
// events back (the average tail when snapshotting every 1 000 events);
// next to the same work as plain SQL with pgx.
//
//	go test -run '^$' -bench AggregateLoad -benchtime 2s ./meowmxpgx/
func BenchmarkAggregateLoad(b *testing.B) {
	const events = 10_000
	ctx := context.Background()
	pool, schema := dbtest.Schema(b)
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(b, err)
	store, err := meowmx.NewStore(driver, nil)
	require.NoError(b, err)
	_, err = store.Migrate(ctx, nil)
	require.NoError(b, err)
	reg := meowmx.NewRegistry()
	require.NoError(b, meowmx.RegisterEvent[benchItemAdded](reg, "ItemAdded"))
	replay, err := meowmx.NewRepository[benchCart](store, "cart", reg, nil)
	require.NoError(b, err)
	snapshots, err := meowmx.NewRepository[benchCart](store, "cart", reg, &meowmx.RepositoryConfig{SnapshotEvery: 1000})
	require.NoError(b, err)

	// appendItems appends n events to a stream at version from-1.
	appendItems := func(id string, from, n int) {
		for done := 0; done < n; {
			batch := make([]meowmx.EventData, min(1000, n-done))
			for i := range batch {
				d, err := reg.Encode(benchItemAdded{SKU: fmt.Sprintf("sku-%d", (from+done+i)%50), Quantity: 1})
				require.NoError(b, err)
				batch[i] = d
			}
			_, err := store.Append(ctx, meowmx.StreamID{Type: "cart", ID: id}, meowmx.Exact(int64(from+done-1)), batch...)
			require.NoError(b, err)
			done += len(batch)
		}
	}
	// snapshotAt writes a snapshot at version v of a stream of v events
	// (0 to v-1) by saving event v through the snapshotting repository.
	snapshotAt := func(id string, v int) {
		appendItems(id, 0, v)
		a, err := replay.Load(ctx, id, nil)
		require.NoError(b, err)
		s, err := snapshots.Load(ctx, id, nil) // no snapshot yet: replays, then snapshots on save
		require.NoError(b, err)
		require.Equal(b, a.State, s.State)
		require.NoError(b, s.Emit(benchItemAdded{SKU: "sku-last", Quantity: 1}))
		require.NoError(b, snapshots.Save(ctx, s))
	}
	snapshotAt("cart-head", events-1) // snapshot at the last event
	snapshotAt("cart-tail", events-501)
	appendItems("cart-tail", events-500, 500) // snapshot 500 events back

	check := func(b *testing.B, a *meowmx.Aggregate[benchCart]) {
		if a.Version() != events-1 || a.State.Lines == 0 {
			b.Fatalf("loaded version %d, %d lines", a.Version(), a.State.Lines)
		}
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)*events/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("replay", func(b *testing.B) {
		for b.Loop() {
			a, err := replay.Load(ctx, "cart-head", nil)
			require.NoError(b, err)
			check(b, a)
		}
		report(b)
	})
	b.Run("snapshot-head", func(b *testing.B) {
		for b.Loop() {
			a, err := snapshots.Load(ctx, "cart-head", nil)
			require.NoError(b, err)
			check(b, a)
			if a.State.Lines != events {
				b.Fatalf("%d lines", a.State.Lines)
			}
		}
		report(b)
	})
	b.Run("snapshot-tail500", func(b *testing.B) {
		for b.Loop() {
			a, err := snapshots.Load(ctx, "cart-tail", nil)
			require.NoError(b, err)
			check(b, a)
		}
		report(b)
	})

	// The same work as hand-written SQL: one query for every event (the
	// floor of a full replay), and the latest snapshot plus the events
	// after it (the floor of a snapshot load).
	table := pgx.Identifier{schema}.Sanitize()
	decodeRows := func(b *testing.B, rows pgx.Rows, c *benchCart) int {
		n := 0
		for rows.Next() {
			var typ string
			var data []byte
			var e benchItemAdded
			if err := rows.Scan(&typ, &data); err != nil {
				b.Fatal(err)
			}
			if err := json.Unmarshal(data, &e); err != nil {
				b.Fatal(err)
			}
			if err := c.Apply(e); err != nil {
				b.Fatal(err)
			}
			n++
		}
		require.NoError(b, rows.Err())
		return n
	}
	b.Run("sql-replay", func(b *testing.B) {
		for b.Loop() {
			var c benchCart
			rows, err := pool.Query(ctx, `SELECT event_type, json_data FROM `+table+`.es_events
				WHERE aggregate_id = $1 ORDER BY version`, "cart-head")
			require.NoError(b, err)
			if n := decodeRows(b, rows, &c); n != events {
				b.Fatalf("%d events", n)
			}
		}
		report(b)
	})
	sqlSnapshot := func(id string, tail int) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				var c benchCart
				var version int64
				var data []byte
				require.NoError(b, pool.QueryRow(ctx, `SELECT version, json_data FROM `+table+`.es_aggregate_snapshot
					WHERE aggregate_id = $1 ORDER BY version DESC LIMIT 1`, id).Scan(&version, &data))
				require.NoError(b, json.Unmarshal(data, &c))
				rows, err := pool.Query(ctx, `SELECT event_type, json_data FROM `+table+`.es_events
					WHERE aggregate_id = $1 AND version > $2 ORDER BY version`, id, version)
				require.NoError(b, err)
				if n := decodeRows(b, rows, &c); n != tail {
					b.Fatalf("%d events", n)
				}
			}
			report(b)
		}
	}
	b.Run("sql-snapshot-head", sqlSnapshot("cart-head", 0))
	b.Run("sql-snapshot-tail500", sqlSnapshot("cart-tail", 500))
}
