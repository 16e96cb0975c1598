package meowmxpgx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/pgcluster"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// appName is the application_name of the sessions of the application
// under test: its pool's, and the subscription lock's and the listener's,
// which copy the pool's settings.
const appName = "meowmx-app"

// deliveryTimeout is how long the subscription has, once the writers have
// stopped, to hand every event to its handler. It polls once a minute, so
// delivery within it after a disruption comes from the worker's own
// recovery and from notifications: the listener must have reconnected.
const deliveryTimeout = 30 * time.Second

// outage is how long TestDisruption/Outage keeps the server down. The issue
// asks for 30 s; the default is 5 s to keep the suite quick, and
// MEOWMX_OUTAGE_SECONDS lengthens it.
func outage(t *testing.T) time.Duration {
	s := os.Getenv("MEOWMX_OUTAGE_SECONDS")
	if s == "" {
		return 5 * time.Second
	}
	n, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err, "MEOWMX_OUTAGE_SECONDS")
	return time.Duration(n * float64(time.Second))
}

// TestDisruption runs a subscription on a server of its own while writers
// append events, disrupts the server, and checks that RunSubscription goes
// on without an error and that every event written, before, during and
// after the disruption, is handled exactly once, in a handler transaction
// that records its id.
func TestDisruption(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		disrupt func(t *testing.T, c *pgcluster.Cluster)
	}{
		{"RestartFast", func(t *testing.T, c *pgcluster.Cluster) { c.Restart(t, pgcluster.Fast) }},
		{"RestartImmediate", func(t *testing.T, c *pgcluster.Cluster) { c.Restart(t, pgcluster.Immediate) }},
		{"TerminateBackends", func(t *testing.T, c *pgcluster.Cluster) {
			n := c.TerminateBackends(t, appName)
			t.Logf("terminated %d sessions of %s", n, appName)
		}},
		{"Outage", func(t *testing.T, c *pgcluster.Cluster) {
			c.Stop(t, pgcluster.Fast)
			time.Sleep(outage(t))
			c.Start(t)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testDisruption(t, tc.disrupt)
		})
	}
}

// logBuffer collects a store's logs, for counting and for the failure
// message.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writer appends events to one stream, one per append, each with a UUID,
// retrying an append that fails with the same events and expected
// version: safe whatever the error (one matching meowmx.ErrCommitUnknown
// may have committed; the retry then returns the original result).
type writer struct {
	s      *meowmx.Store[pgx.Tx]
	stream meowmx.StreamID

	n       int64 // events appended
	retries int   // failed attempts
	unknown int   // of which matched ErrCommitUnknown
	err     error // an append that could not succeed
}

func (w *writer) run(stop <-chan struct{}, giveUp time.Duration) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
		if w.err = w.appendOne(giveUp); w.err != nil {
			return
		}
	}
}

// appendOne appends one event, retrying for up to giveUp.
func (w *writer) appendOne(giveUp time.Duration) error {
	ev := meowmx.EventData{UUID: uuid.New(), Type: "Ticked", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, w.n))}
	deadline := time.Now().Add(giveUp)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := w.s.Append(ctx, w.stream, meowmx.Exact(w.n-1), ev)
		cancel()
		if err == nil {
			w.n++
			return nil
		}
		w.retries++
		if errors.Is(err, meowmx.ErrCommitUnknown) {
			w.unknown++
		}
		if errors.Is(err, meowmx.ErrConcurrency) || errors.Is(err, meowmx.ErrDuplicateEvent) ||
			errors.Is(err, meowmx.ErrInvalidArgument) || time.Now().After(deadline) {
			return fmt.Errorf("append %d to %s: %w", w.n, w.stream, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testDisruption(t *testing.T, disrupt func(t *testing.T, c *pgcluster.Cluster)) {
	started := time.Now()
	c := pgcluster.Start(t)
	ctx := context.Background()

	// The application's pool: the writers and the subscription share it,
	// so its connections have been used within the last second when the
	// disruption comes, and pgxpool hands them out without a ping.
	cfg, err := pgxpool.ParseConfig(c.URL())
	require.NoError(t, err)
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["application_name"] = appName
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	check, err := pgxpool.New(ctx, c.URL()) // the test's own, for checks
	require.NoError(t, err)
	t.Cleanup(check.Close)

	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	open := func() *meowmx.Store[pgx.Tx] {
		d, err := meowmxpgx.New(pool, nil)
		require.NoError(t, err)
		s, err := meowmx.NewStore(d, &meowmx.Config{Logger: logger})
		require.NoError(t, err)
		return s
	}
	// Two stores on the pool, as two processes would have: the writers'
	// appends wake the subscription only through NOTIFY.
	sub, ws := open(), open()
	_, err = sub.Migrate(ctx, nil)
	require.NoError(t, err)
	_, err = check.Exec(ctx, `CREATE TABLE handled (event_id BIGINT NOT NULL, stream TEXT NOT NULL, version BIGINT NOT NULL,
		at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())`)
	require.NoError(t, err)

	// When the test ends early, the subscription and the writers stop
	// before the pool closes (cleanups run last in, first out).
	subCtx, cancel := context.WithCancel(ctx)
	done, finished := make(chan error, 1), make(chan struct{})
	t.Cleanup(func() { cancel(); <-finished })
	go func() {
		defer close(finished)
		done <- sub.RunSubscription(subCtx, &meowmx.SubscriptionConfig[pgx.Tx]{
			Name: "restart",
			Handler: meowmx.HandlerFunc[pgx.Tx](func(ctx context.Context, tx pgx.Tx, ev *meowmx.RecordedEvent) error {
				time.Sleep(time.Millisecond) // some work: the worker is busy when the disruption comes
				_, err := tx.Exec(ctx, `INSERT INTO handled (event_id, stream, version) VALUES ($1, $2, $3)`,
					ev.Position.EventID, ev.StreamID.ID, ev.Version)
				return err
			}),
			CheckpointEvery: 20,
			// A broken connection counted as a handler failure stops the
			// subscription at once. (With the default, 3, it takes three
			// in a row: the pool must hand out two more dead connections,
			// used within the last second, before anyone else finds them
			// dead, which happens here only at times.)
			MaxAttempts: 1,
			// Only a notification (or the worker's recovery from an error)
			// ends its wait for new events.
			PollInterval: time.Minute,
		})
	}()
	failed := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nlogs:\n%s", append(args, logs.String())...)
	}

	stop := make(chan struct{})
	stopWriters := sync.OnceFunc(func() { close(stop) })
	writers := make([]*writer, 3)
	var wg sync.WaitGroup
	t.Cleanup(func() { stopWriters(); wg.Wait() })
	giveUp := outage(t) + time.Minute
	for i := range writers {
		writers[i] = &writer{s: ws, stream: meowmx.StreamID{Type: "clock", ID: fmt.Sprint("w", i)}}
		wg.Go(func() { writers[i].run(stop, giveUp) })
	}
	ready := time.Now()
	time.Sleep(time.Second)
	before := writtenSoFar(t, check)
	t0 := time.Now()
	disrupt(t, c)
	back := time.Now()
	disruption := back.Sub(t0)
	time.Sleep(2 * time.Second) // appends after the server is back
	stopWriters()
	wg.Wait()
	writersStopped := time.Now()
	var total, retries, unknown int64
	for _, w := range writers {
		if w.err != nil {
			failed("writer: %v", w.err)
		}
		total += w.n
		retries += int64(w.retries)
		unknown += int64(w.unknown)
	}
	require.Positive(t, before, "nothing was written before the disruption")
	require.Greater(t, total, before, "nothing was written after the disruption")

	// Every event, and each once.
	caughtUp := waitHandled(t, check, total, done, failed)
	if caughtUp.IsZero() {
		failed("%d events written, %d handled %s after the writers stopped: the subscription did not catch up (polling once a minute: was it woken?)",
			total, countHandled(t, check), deliveryTimeout)
	}
	delivery := caughtUp.Sub(writersStopped)
	var resumed time.Time // the first handling after the server was back
	require.NoError(t, check.QueryRow(ctx, `SELECT min(at) FROM handled WHERE at >= $1`, back).Scan(&resumed))
	checkOnce(t, check, writers, failed)

	// Once idle, one more event must be delivered by notification alone.
	time.Sleep(500 * time.Millisecond)
	probe := &writer{s: ws, stream: meowmx.StreamID{Type: "clock", ID: "probe"}}
	probeAt := time.Now()
	require.NoError(t, probe.appendOne(time.Minute))
	total++
	probed := waitHandled(t, check, total, done, failed)
	if probed.IsZero() {
		failed("an append after the disruption was not delivered within %s: the listener did not reconnect?", deliveryTimeout)
	}

	cancel()
	require.NoError(t, <-done, "RunSubscription")
	handlerFailed := strings.Count(logs.String(), "handler failed")
	t.Logf("cluster ready in %s; disruption %s; handling resumed %s after it; %d events (%d before it), "+
		"%d append retries (%d commit unknown); caught up %s after the writers stopped; one more event delivered in %s; "+
		"logged: %d handler failures, %d worker restarts, %d listener losses, %d failed notifications; test %s",
		ready.Sub(started).Round(time.Millisecond), disruption.Round(time.Millisecond), resumed.Sub(back).Round(time.Millisecond),
		total, before, retries, unknown, delivery.Round(time.Millisecond), probed.Sub(probeAt).Round(time.Millisecond),
		handlerFailed, strings.Count(logs.String(), "subscription worker lost ownership or failed"),
		strings.Count(logs.String(), "notification listener lost"), strings.Count(logs.String(), "notify failed"),
		time.Since(started).Round(time.Millisecond))
	require.Zero(t, handlerFailed, "a broken connection counted as a handler failure:\n%s", logs.String())
}

func writtenSoFar(t *testing.T, check *pgxpool.Pool) int64 {
	t.Helper()
	var n int64
	require.NoError(t, check.QueryRow(context.Background(), `SELECT count(*) FROM es_events`).Scan(&n))
	return n
}

func countHandled(t *testing.T, check *pgxpool.Pool) int64 {
	t.Helper()
	var n int64
	require.NoError(t, check.QueryRow(context.Background(), `SELECT count(DISTINCT event_id) FROM handled`).Scan(&n))
	return n
}

// waitHandled waits until n distinct events are handled and returns when
// they were; zero after deliveryTimeout. It fails the test when
// RunSubscription returns.
func waitHandled(t *testing.T, check *pgxpool.Pool, n int64, done <-chan error, failed func(string, ...any)) time.Time {
	t.Helper()
	deadline := time.Now().Add(deliveryTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			failed("RunSubscription returned: %v", err)
		default:
		}
		if countHandled(t, check) >= n {
			return time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Time{}
}

// checkOnce checks that the store has each writer's events, at versions 0
// to n-1, and that the handler recorded each stored event exactly once.
func checkOnce(t *testing.T, check *pgxpool.Pool, writers []*writer, failed func(string, ...any)) {
	t.Helper()
	ctx := context.Background()
	for _, w := range writers {
		var n, top int64
		require.NoError(t, check.QueryRow(ctx, `SELECT count(*), COALESCE(max(e.version), -1)
			FROM es_events e JOIN es_aggregates a ON a.id = e.aggregate_id WHERE a.id = $1`, w.stream.ID).Scan(&n, &top))
		if n != w.n || top != w.n-1 {
			failed("stream %s: %d events stored up to version %d; the writer appended %d", w.stream, n, top, w.n)
		}
	}
	rows, err := check.Query(ctx, `SELECT event_id, count(*) FROM handled GROUP BY event_id HAVING count(*) > 1 ORDER BY event_id LIMIT 10`)
	require.NoError(t, err)
	twice, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		ID    int64
		Count int64
	}])
	require.NoError(t, err)
	if len(twice) > 0 {
		failed("events handled more than once (id, count): %v", twice)
	}
	var lost, extra int64
	require.NoError(t, check.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM es_events e WHERE NOT EXISTS (SELECT FROM handled h WHERE h.event_id = e.id)),
		(SELECT count(*) FROM handled h WHERE NOT EXISTS (SELECT FROM es_events e WHERE e.id = h.event_id))`).Scan(&lost, &extra))
	if lost != 0 || extra != 0 {
		failed("%d stored events not handled, %d handled events not stored", lost, extra)
	}
}
