package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// schemaTracer records the statements that name one schema: those of the
// driver's tables. The lock, the horizon and LISTEN/NOTIFY do not.
type schemaTracer struct {
	schema string
	mu     sync.Mutex
	sql    []string
}

func (s *schemaTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.Contains(data.SQL, s.schema) {
		s.mu.Lock()
		s.sql = append(s.sql, data.SQL)
		s.mu.Unlock()
	}
	return ctx
}

func (s *schemaTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the statements recorded since the last take.
func (s *schemaTracer) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sql
	s.sql = nil
	return out
}

// TestSubscriptionStartupStatements counts the statements a worker sends
// on the subscription's tables when it takes ownership, before it reads
// its first page. An existing subscription: the lease, which reads the
// checkpoint; the row lock that keeps the Python client's batches out (on
// the driver's locking connection); the configured filter stored (and the
// row read, once per RunSubscription); the parked events listed. A new
// one: the lease, which finds none; the subscription created with its
// filter; the lease; the row lock; the parked events. The row of an existing subscription keeps its checkpoint,
// whatever StartFrom says, and takes the new filter.
func TestSubscriptionStartupStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, schema := dbtest.Schema(t)
	tracer := &schemaTracer{schema: schema}
	pcfg, err := pgxpool.ParseConfig(dbtest.DatabaseURL())
	require.NoError(t, err)
	pcfg.MaxConns = 4
	pcfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(t, err)
	s, err := meowmx.NewStore(driver, nil)
	require.NoError(t, err)
	_, err = s.Migrate(ctx, nil)
	require.NoError(t, err)

	// firstPage runs the subscription until it has caught up, and returns
	// the first event its handler saw and the statements sent until then,
	// the last of which read the page.
	firstPage := func(cfg *meowmx.SubscriptionConfig[pgx.Tx]) (*meowmx.RecordedEvent, []string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var first *meowmx.RecordedEvent
		var sent []string
		handled := make(chan struct{})
		cfg.Handler = meowmx.HandlerFunc[pgx.Tx](func(_ context.Context, _ pgx.Tx, ev *meowmx.RecordedEvent) error {
			if first == nil {
				first, sent = ev, tracer.take()
				close(handled)
			}
			return nil
		})
		tracer.take()
		done := make(chan error, 1)
		go func() { done <- s.RunSubscription(ctx, cfg) }()
		select {
		case <-handled:
		case err := <-done:
			t.Fatalf("RunSubscription returned before its handler ran: %v", err)
		}
		require.NoError(t, s.WaitForSubscription(ctx, cfg.Name))
		cancel()
		require.NoError(t, <-done)
		return first, sent
	}
	appendOne := func(typ string) meowmx.Position {
		t.Helper()
		// The first append also reads the tables' id type, which the
		// driver caches: the worker does not pay for it.
		res, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "c1"}, meowmx.AnyVersion,
			meowmx.EventData{Type: typ, Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
		pos := res.Events[0].Position
		// Wait until it is below the horizon, which other tests' open
		// transactions hold back: the worker's first page then has it.
		before := pos
		before.EventID--
		require.Eventually(t, func() bool {
			evs, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{After: before, Limit: 1})
			return err == nil && len(evs) == 1 && evs[0].Position == pos
		}, 30*time.Second, 5*time.Millisecond)
		return pos
	}
	checkStartup := func(sent []string, want int) {
		t.Helper()
		require.NotEmpty(t, sent)
		page := sent[len(sent)-1]
		require.Contains(t, page, "es_events", "the last statement reads the page")
		before := sent[:len(sent)-1]
		require.Equal(t, want, len(before), "statements before the first page:\n%s", strings.Join(before, "\n----\n"))
	}

	first := appendOne("Born")
	ev, sent := firstPage(&meowmx.SubscriptionConfig[pgx.Tx]{Name: "startup"})
	require.Equal(t, first, ev.Position)
	checkStartup(sent, 5)

	// Again, on the existing subscription, with another filter and a start
	// position that must not apply: the checkpoint stays after "Born".
	second := appendOne("Meowed")
	ev, sent = firstPage(&meowmx.SubscriptionConfig[pgx.Tx]{Name: "startup",
		AggregateTypes: []string{"cat"}, StartFrom: meowmx.StartFrom{End: true}})
	require.Equal(t, second, ev.Position)
	checkStartup(sent, 4)
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, []string{"cat"}, subs[0].AggregateTypes, "the new filter is stored")
}
