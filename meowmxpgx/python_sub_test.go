package meowmxpgx_test

import (
	"context"
	"fmt"
	"sync"
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

// handledLog counts, per event id, the handler calls of either client and
// the handlings that committed (rows of the handled table, written in the
// handler's transaction).
type handledLog struct {
	mu       sync.Mutex
	calls    map[int64][]string
	active   map[string]int // handler calls in progress, by client
	overlaps int            // calls that began while the other client's was in progress
}

// call records a handler call of who; done, when it returns.
func (h *handledLog) call(id int64, who string) (done func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls[id] = append(h.calls[id], who)
	for w, n := range h.active {
		if w != who && n > 0 {
			h.overlaps++
		}
	}
	h.active[who]++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.active[who]--
	}
}

func (h *handledLog) count(who string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ws := range h.calls {
		for _, w := range ws {
			if w == who {
				n++
			}
		}
	}
	return n
}

// runPython runs the Python client's subscription loop (Client.sub: a
// batch, then a sleep when it handled nothing) until ctx ends.
func runPython(ctx context.Context, t *testing.T, pool *pgxpool.Pool, schema, name string, log *handledLog) {
	s := pgx.Identifier{schema}.Sanitize()
	for ctx.Err() == nil {
		n, err := pythonBatch(ctx, pool, schema, name, "order", 10, func(tx pgx.Tx, ev pythonEvent) error {
			defer log.call(ev.ID, "python")()
			time.Sleep(time.Millisecond) // a handler that takes a while widens any overlap
			_, err := tx.Exec(ctx, `INSERT INTO `+s+`.handled (event_id, who) VALUES ($1, 'python')`, ev.ID)
			return err
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.Errorf("python batch: %v", err)
			return
		}
		if n == 0 {
			sleep(ctx, 5*time.Millisecond)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// TestPythonSubscriptionExclusive runs the Python client's subscription
// loop beside Go workers of the same subscription, Python first or Go
// first, while both clients append, and with the Go worker leaving and
// coming back: every event is handled exactly once, by one client, and
// never by both (the handlers' calls, not only their commits, are
// counted).
func TestPythonSubscriptionExclusive(t *testing.T) {
	t.Parallel()
	for _, pythonFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("python first %v", pythonFirst), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pool, schema := dbtest.Schema(t)
			s := pgx.Identifier{schema}.Sanitize()
			driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
			require.NoError(t, err)
			store, err := meowmx.NewStore(driver, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = store.Close(context.Background()) })
			_, err = store.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: "UUID"})
			require.NoError(t, err)
			require.NoError(t, pythonSetup(t, pool, schema, "UUID"))
			_, err = pool.Exec(ctx, `CREATE TABLE `+s+`.handled (event_id BIGINT NOT NULL, who TEXT NOT NULL)`)
			require.NoError(t, err)

			log := &handledLog{calls: map[int64][]string{}, active: map[string]int{}}
			const name = "shared"
			startGo := func() (stop func()) {
				wctx, wcancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() {
					done <- store.RunSubscription(wctx, &meowmx.SubscriptionConfig[pgx.Tx]{
						Name: name, AggregateTypes: []string{"order"}, LockInterval: 50 * time.Millisecond,
						PollInterval: 10 * time.Millisecond, MaxPollInterval: 100 * time.Millisecond,
						Handler: meowmx.HandlerFunc[pgx.Tx](func(ctx context.Context, tx pgx.Tx, ev *meowmx.RecordedEvent) error {
							defer log.call(ev.Position.EventID, "go")()
							time.Sleep(time.Millisecond)
							_, err := tx.Exec(ctx, `INSERT INTO `+s+`.handled (event_id, who) VALUES ($1, 'go')`, ev.Position.EventID)
							return err
						}),
					})
				}()
				return func() {
					wcancel()
					require.NoError(t, <-done)
				}
			}
			startPython := func() (stop func()) {
				pctx, pcancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() {
					defer close(done)
					runPython(pctx, t, pool, schema, name, log)
				}()
				return func() {
					pcancel()
					<-done
				}
			}
			// Writers: both clients, orders and cats (which neither handles).
			write := func(n int) {
				for i := range n {
					id := uuid.NewString()
					if i%2 == 0 {
						require.True(t, pythonAppend(t, pool, schema, "order", id, -1, `{"py": 0}`, `{"py": 1}`))
					} else {
						_, err := store.Append(ctx, meowmx.StreamID{Type: "order", ID: id}, meowmx.NoStream, ev("Go", `{}`))
						require.NoError(t, err)
					}
					_, err := store.Append(ctx, meowmx.StreamID{Type: "cat", ID: uuid.NewString()}, meowmx.NoStream, ev("Cat", `{}`))
					require.NoError(t, err)
				}
			}
			// writeUntil writes, a little at a time, until who has handled
			// atLeast events: a client busy with a backlog runs batch after
			// batch, and the other gets the row when it idles.
			writeUntil := func(who string, atLeast int) {
				deadline := time.Now().Add(time.Minute)
				for log.count(who) < atLeast {
					require.True(t, time.Now().Before(deadline), "%s handled %d events", who, log.count(who))
					write(1)
					time.Sleep(20 * time.Millisecond)
				}
			}

			var stopGo, stopPython func()
			if pythonFirst {
				stopPython = startPython()
				writeUntil("python", 5)
				stopGo = startGo()
				write(30)
				writeUntil("go", 1)
			} else {
				stopGo = startGo()
				writeUntil("go", 5)
				stopPython = startPython()
				write(30)
			}
			// The Go worker leaves (Python takes over) and comes back.
			stopGo()
			writeUntil("python", log.count("python")+1)
			stopGo = startGo()
			write(30)
			writeUntil("go", log.count("go")+1)

			// Every order event handled: the checkpoint reaches the last.
			var want int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+s+`.es_events e JOIN `+s+`.es_aggregates a ON a.id = e.aggregate_id
				WHERE a.aggregate_type = 'order'`).Scan(&want))
			require.Eventually(t, func() bool {
				var n int
				require.NoError(t, pool.QueryRow(ctx, `SELECT count(DISTINCT event_id) FROM `+s+`.handled`).Scan(&n))
				return n == want
			}, time.Minute, 10*time.Millisecond)
			stopGo()
			stopPython()

			byPython, byGo := log.count("python"), log.count("go")
			log.mu.Lock()
			defer log.mu.Unlock()
			require.Len(t, log.calls, want)
			require.Zero(t, log.overlaps, "handler calls of both clients at once")
			// A call repeats only when a Go worker's transaction rolled
			// back: it was stopped during the call (Python or the next Go
			// worker handles the event after it), or its commit was fenced
			// because Python moved the checkpoint during a row lock's
			// hand-over (the worker reads again from there). Never at the
			// same time, and the last call is the one committed.
			for id, who := range log.calls {
				if len(who) != 1 {
					t.Logf("event %d: handler called by %v", id, who)
					require.Equal(t, "go", who[0], "event %d: only Go's calls roll back", id)
					var committed string
					require.NoError(t, pool.QueryRow(ctx, `SELECT string_agg(who, ',') FROM `+s+`.handled WHERE event_id = $1`, id).Scan(&committed))
					require.Equal(t, who[len(who)-1], committed, "event %d: the earlier calls rolled back", id)
				}
			}
			var rows, distinct int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id) FROM `+s+`.handled`).Scan(&rows, &distinct))
			require.Equal(t, want, rows, "committed handlings")
			require.Equal(t, want, distinct)
			t.Logf("handled by python %d, by go %d", byPython, byGo)
			require.NotZero(t, byPython)
			require.NotZero(t, byGo)
		})
	}
}
