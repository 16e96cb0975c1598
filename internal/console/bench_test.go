package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/console"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// BenchmarkPages times the console's pages on a PostgreSQL store filled
// with generate_series: MEOWMX_SCALE events (default 100,000) in streams
// of 10 events, in 10 categories, plus a rare category of 10 streams
// written halfway. Each page is an HTTP request served in process; the
// same page's main query as plain SQL runs beside some of them.
//
//	MEOWMX_SCALE=10000000 go test -run '^$' -bench BenchmarkPages -benchtime 20x ./internal/console/
func BenchmarkPages(b *testing.B) {
	n := 100_000
	if s := os.Getenv("MEOWMX_SCALE"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err)
	}
	ctx := context.Background()
	pool, schema := dbtest.Schema(b)
	d, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(b, err)
	s, err := meowmx.NewStore(d, nil)
	require.NoError(b, err)
	_, err = s.Migrate(ctx, nil)
	require.NoError(b, err)
	q := func(table string) string { return pgx.Identifier{schema, table}.Sanitize() }
	fill := func(from, to int, category *string) {
		_, err := pool.Exec(ctx, `INSERT INTO `+q("es_aggregates")+` (id, version, aggregate_type)
			SELECT 's' || g, 9, coalesce($3, 'cat' || (g % 10)) FROM generate_series($1::int, $2::int) g`, from/10, to/10-1, category)
		require.NoError(b, err)
		_, err = pool.Exec(ctx, `INSERT INTO `+q("es_events")+` (transaction_id, aggregate_id, version, event_type, json_data)
			SELECT pg_current_xact_id(), 's' || (g / 10), g % 10, CASE WHEN g % 10 = 0 THEN 'Born' ELSE 'Fed' END,
				'{"food": "tuna", "grams": 85, "note": "some payload of a typical size"}'
			FROM generate_series($1::int, $2::int) g`, from, to-1)
		require.NoError(b, err)
	}
	half := n / 20 * 10
	fill(0, half, nil)
	rare := "rare"
	fill(n, n+100, &rare) // written halfway: ids after the first half
	fill(half, n, nil)
	_, err = pool.Exec(ctx, `VACUUM ANALYZE `+q("es_aggregates"))
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `VACUUM ANALYZE `+q("es_events"))
	require.NoError(b, err)
	for _, name := range []string{"projector", "mailer"} { // subscriptions at the start: lag capped
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.RunSubscription(sctx, &meowmx.SubscriptionConfig[pgx.Tx]{Name: name,
				Handler: meowmx.HandlerFunc[pgx.Tx](func(context.Context, pgx.Tx, *meowmx.RecordedEvent) error {
					cancel() // stop after the first event: a large lag
					return nil
				})})
		}()
		<-done
	}
	mid, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{Backward: true, Limit: 1})
	require.NoError(b, err)
	require.Len(b, mid, 1)
	midPos := meowmx.Position{TransactionID: mid[0].Position.TransactionID, EventID: mid[0].Position.EventID / 2}

	h, err := console.New(s, console.Config{})
	require.NoError(b, err)
	page := func(b *testing.B, path string) {
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
			}
		}
	}
	sql := func(b *testing.B, query string, args ...any) {
		for b.Loop() {
			rows, err := pool.Query(ctx, query, args...)
			require.NoError(b, err)
			for rows.Next() {
				_ = rows.RawValues()
			}
			require.NoError(b, rows.Err())
		}
	}
	midStream := "s" + strconv.Itoa(n/20)
	b.Run("Categories", func(b *testing.B) { page(b, "/") })
	b.Run("Streams", func(b *testing.B) { page(b, "/streams?type=cat3") })
	b.Run("StreamsDeep", func(b *testing.B) { page(b, "/streams?type=cat3&after="+midStream) })
	b.Run("StreamsDeep/SQL", func(b *testing.B) {
		sql(b, `SELECT id, aggregate_type, version FROM `+q("es_aggregates")+`
			WHERE aggregate_type = $1 AND id > $2 ORDER BY id LIMIT 51`, "cat3", midStream)
	})
	b.Run("StreamsPrefix", func(b *testing.B) { page(b, "/streams?type=cat3&prefix=s123") })
	b.Run("Stream", func(b *testing.B) { page(b, "/stream?id="+midStream) })
	b.Run("Log", func(b *testing.B) { page(b, "/log") })
	b.Run("LogDeep", func(b *testing.B) { page(b, "/log?before="+midPos.String()) })
	b.Run("LogDeep/SQL", func(b *testing.B) {
		sql(b, `SELECT e.id, e.transaction_id, e.aggregate_id, a.aggregate_type, e.version, e.event_type, e.json_data, e.metadata, e.event_uuid, e.created_at
			FROM `+q("es_events")+` e JOIN `+q("es_aggregates")+` a ON a.id = e.aggregate_id
			WHERE (e.transaction_id, e.id) < ($1::xid8, $2::bigint) ORDER BY e.transaction_id DESC, e.id DESC LIMIT 51`,
			midPos.TransactionID, midPos.EventID)
	})
	b.Run("LogCategory", func(b *testing.B) { page(b, "/log?type=cat3") })
	b.Run("LogEventType", func(b *testing.B) { page(b, "/log?event=Born") })
	b.Run("LogRareCategory", func(b *testing.B) { page(b, "/log?type=rare") })
	b.Run("Subscriptions", func(b *testing.B) { page(b, "/subscriptions") })
	b.Run("Subscription", func(b *testing.B) { page(b, "/subscription?name=mailer") })
}
