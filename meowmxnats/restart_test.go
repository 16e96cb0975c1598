package meowmxnats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/natsserver"
	"github.com/meowmx/meowmx/internal/pgcluster"
	"github.com/meowmx/meowmx/meowmxnats"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// TestRelayRestarts runs a partitioned relay, two members on connections
// of their own, on a PostgreSQL server and a nats-server of the test's
// own, while writers append; it restarts the nats-server, then
// PostgreSQL, then both at once, and checks that JetStream ends up with
// every event exactly once, each stream in order.
func TestRelayRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := pgcluster.Start(t)
	srv := natsserver.Start(t)

	pool, err := pgxpool.New(ctx, pg.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	open := func() *meowmx.Store[pgx.Tx] {
		d, err := meowmxpgx.New(pool, nil)
		require.NoError(t, err)
		s, err := meowmx.NewStore(d, &meowmx.Config{Logger: quietLogger()})
		require.NoError(t, err)
		return s
	}
	ws := open()
	_, err = ws.Migrate(ctx, nil)
	require.NoError(t, err)

	sig := newSignal("NATS failed")
	for range 2 { // two members, as two processes would be
		runRelay(t, open(), connect(t, srv.URL()), &meowmxnats.Config{Partitions: 4, BatchSize: 50, Window: 20,
			AckTimeout: time.Second, Logger: slog.New(sig)})
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- write(ws, meowmx.StreamID{Type: "tick", ID: fmt.Sprintf("s.%d", i)}, stop)
		}()
	}
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	})
	appended := func(n int) { // waits until the writers have appended n more events
		ctx, cancel := context.WithTimeout(ctx, testTimeout)
		defer cancel()
		var from int
		require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM es_events").Scan(&from))
		for {
			var now int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM es_events").Scan(&now); err == nil && now >= from+n {
				return
			}
			require.NoError(t, ctx.Err(), "the writers stopped writing")
			time.Sleep(20 * time.Millisecond)
		}
	}
	// busy appends a backlog and waits until the relay is relaying it, so
	// that the disruption that follows comes while publishes await their
	// acknowledgement and checkpoints their commit: what was acknowledged
	// and not checkpointed is sent again, and must not be stored twice.
	checkNC := connect(t, srv.URL())
	checkJS, err := jetstream.New(checkNC)
	require.NoError(t, err)
	stored := func() uint64 {
		st, err := checkJS.Stream(ctx, meowmxnats.StreamDefault)
		if err != nil {
			return 0
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	bulk := 0
	busy := func() {
		from := stored()
		for range 20 {
			evs := make([]meowmx.EventData, 200)
			for i := range evs {
				evs[i] = meowmx.EventData{Type: "Bulk", Data: json.RawMessage(`{}`)}
			}
			_, err := ws.Append(ctx, meowmx.StreamID{Type: "bulk", ID: fmt.Sprint("b.", bulk)}, meowmx.NoStream, evs...)
			require.NoError(t, err)
			bulk++
		}
		deadline := time.Now().Add(testTimeout)
		for stored() < from+500 {
			require.True(t, time.Now().Before(deadline), "the relay is not relaying")
			time.Sleep(time.Millisecond)
		}
	}
	appended(200)
	busy()
	t.Log("restarting nats-server")
	srv.Restart(t)
	appended(200)
	busy()
	t.Log("restarting PostgreSQL")
	pg.Restart(t, pgcluster.Fast)
	appended(200)
	busy()
	t.Log("stopping both")
	srv.Stop(t)
	pg.Restart(t, pgcluster.Immediate)
	time.Sleep(time.Second) // the relay fails against a server that is down
	srv.Start(t)
	appended(200)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	select {
	case <-sig.ch: // the restarts were felt
	default:
		t.Fatal("the relay never saw NATS fail")
	}
	waitFor(t, ws, meowmxnats.NameDefault)
	nc := connect(t, srv.URL())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	want := readAll(t, ws)
	got := readBack(t, js, meowmxnats.StreamDefault)
	t.Logf("%d events written and relayed", len(want))
	requireRelayed(t, "meowmx", want, got)
}

// write appends to one stream until stop is closed, one event per append,
// retrying an append that failed (with its UUID, so that a retry of an
// append that did commit is not written twice).
func write(s *meowmx.Store[pgx.Tx], stream meowmx.StreamID, stop <-chan struct{}) error {
	for n := int64(0); ; n++ {
		ev := meowmx.EventData{UUID: uuid.New(), Type: "Ticked", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
		deadline := time.Now().Add(testTimeout)
		for {
			select {
			case <-stop:
				return nil
			case <-time.After(2 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := s.Append(ctx, stream, meowmx.Exact(n-1), ev)
			cancel()
			if err == nil {
				break
			}
			if errors.Is(err, meowmx.ErrConcurrency) || time.Now().After(deadline) {
				return fmt.Errorf("append %d to %s: %w", n, stream, err)
			}
		}
	}
}
