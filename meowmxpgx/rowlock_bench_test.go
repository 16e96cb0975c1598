package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// BenchmarkSubscriptionRowLock measures what the subscription row lock
// (meowmxpgx.Config.NoSubscriptionRowLock false, the default) costs, with
// a Go worker owning a subscription, against the same without it:
//
//   - latency: append commit to the Go handler (another store writes);
//
//   - python-visibility: append commit until the Python client's read
//     (plain pg_snapshot_xmin horizon, polled every millisecond) sees the
//     event: the lock's transactions hold that horizon back;
//
//   - horizon: one read of Go's horizon (horizonSQL, which leaves the
//     lock's transactions out) beside the plain pg_snapshot_xmin.
//
//     go test -run '^$' -bench 'SubscriptionRowLock' -benchtime 200x ./meowmxpgx/
func BenchmarkSubscriptionRowLock(b *testing.B) {
	for _, lock := range []bool{true, false} {
		name := "row-lock"
		if !lock {
			name = "no-row-lock"
		}
		b.Run(name, func(b *testing.B) {
			s, pool, schema := newSchemaStore(b, &meowmxpgx.Config{NoSubscriptionRowLock: !lock}, nil)
			writer := storeOn(b, pool, schema, nil, nil)
			got := make(chan time.Time, 1)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- s.RunSubscription(ctx, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "latency", AggregateTypes: []string{"ping"},
					BatchHandler: meowmx.BatchHandlerFunc[pgx.Tx](func(context.Context, pgx.Tx, []*meowmx.RecordedEvent) error {
						select {
						case got <- time.Now():
						default:
						}
						return nil
					})})
			}()
			defer func() { cancel(); <-done }()
			require.NoError(b, s.WaitForSubscription(ctx, "latency"))
			data := meowmx.EventData{Type: "Ping", Data: json.RawMessage(`{}`)}
			q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }

			b.Run("latency", func(b *testing.B) {
				var lat []time.Duration
				for b.Loop() {
					_, err := writer.Append(ctx, meowmx.StreamID{Type: "ping", ID: "p"}, meowmx.AnyVersion, data)
					committed := time.Now()
					require.NoError(b, err)
					lat = append(lat, (<-got).Sub(committed))
				}
				report(b, lat)
			})
			b.Run("python-visibility", func(b *testing.B) {
				var lat []time.Duration
				for b.Loop() {
					res, err := writer.Append(ctx, meowmx.StreamID{Type: "other", ID: "o"}, meowmx.AnyVersion, data)
					committed := time.Now()
					require.NoError(b, err)
					id := res.Events[0].Position.EventID
					for {
						var seen bool
						require.NoError(b, pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM `+q("es_events")+` e
							WHERE e.id = $1 AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()))`, id).Scan(&seen))
						if seen {
							break
						}
						time.Sleep(time.Millisecond)
					}
					lat = append(lat, time.Since(committed))
				}
				report(b, lat)
			})
			for _, h := range []struct{ name, sql string }{
				{"horizon-plain-sql", `SELECT pg_snapshot_xmin(pg_current_snapshot())`},
				{"horizon-meowmx", `SELECT ` + meowmxpgx.HorizonSQL},
			} {
				b.Run(h.name, func(b *testing.B) {
					for b.Loop() {
						var x uint64
						require.NoError(b, pool.QueryRow(ctx, h.sql).Scan(&x))
					}
				})
			}
		})
	}
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
