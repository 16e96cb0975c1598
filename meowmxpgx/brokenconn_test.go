package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// breaker dials a pool's connections so that a test can break them, as a
// server restart does, without touching the server: it closes their
// sockets under pgx, which learns of it at its next write or read.
type breaker struct {
	mu     sync.Mutex
	pooled map[net.Conn]bool // the pool's connections, not yet broken
	refuse atomic.Bool       // dialing fails, as with the server down
}

func (b *breaker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if b.refuse.Load() {
		return nil, errors.New("test: connection refused")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// breakAll breaks every connection of the pool and returns how many.
func (b *breaker) breakAll() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.pooled)
	for c := range b.pooled {
		_ = c.Close()
	}
	clear(b.pooled)
	return n
}

// breakablePool returns a pool of up to maxConns connections on the test
// server whose connections b breaks. Connections made with a copy of its
// ConnConfig (the subscription lock's, the listener's) are not broken.
func breakablePool(t *testing.T, maxConns int32) (*pgxpool.Pool, *breaker) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbtest.DatabaseURL())
	require.NoError(t, err)
	cfg.MaxConns = maxConns
	b := &breaker{pooled: map[net.Conn]bool{}}
	cfg.ConnConfig.DialFunc = b.dial
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.pooled[c.PgConn().Conn()] = true
		return nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, b
}

// warm makes the pool open n connections and use each: for a second,
// pgxpool hands them out without a ping.
func warm(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	conns := make([]*pgxpool.Conn, n)
	for i := range conns {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		_, err = c.Exec(ctx, "SELECT 1")
		require.NoError(t, err)
		conns[i] = c
	}
	for _, c := range conns {
		c.Release()
	}
}

// TestBeginReconnects breaks the connection of a transaction that has not
// sent BEGIN yet, and the idle connections the pool would hand out next:
// the transaction begins on a fresh connection, and commits.
func TestBeginReconnects(t *testing.T) {
	t.Parallel()
	for _, idle := range []int{0, 2} {
		t.Run(fmt.Sprint(idle, "IdleBroken"), func(t *testing.T) {
			t.Parallel()
			shared, schema := dbtest.Schema(t)
			table := pgx.Identifier{schema, "t"}.Sanitize()
			ctx := context.Background()
			_, err := shared.Exec(ctx, `CREATE TABLE `+table+` (n int)`)
			require.NoError(t, err)
			pool, b := breakablePool(t, 4)
			warm(t, pool, 1+idle)
			d, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
			require.NoError(t, err)

			etx, err := d.Begin(ctx)
			require.NoError(t, err)
			t.Cleanup(func() { _ = etx.Rollback(ctx) }) // before pool.Close, which waits for it
			require.Equal(t, 1+idle, b.breakAll())
			_, err = d.UnwrapTx(etx).Exec(ctx, `INSERT INTO `+table+` VALUES (1)`)
			require.NoError(t, err, "BEGIN was not sent again on a fresh connection")
			require.NoError(t, etx.Commit(ctx))
			var n int
			require.NoError(t, shared.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n))
			require.Equal(t, 1, n)
		})
	}
}

// TestBeginBroken breaks a transaction's connection before BEGIN with
// the server unreachable: BEGIN fails and the transaction says that its
// connection broke. A transaction whose BEGIN succeeded, or was never
// sent, has a connection that did not.
func TestBeginBroken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, b := breakablePool(t, 4)
	d, err := meowmxpgx.New(pool, nil)
	require.NoError(t, err)

	etx, err := d.Begin(ctx)
	require.NoError(t, err)
	require.False(t, etx.Broken())
	_, err = d.UnwrapTx(etx).Exec(ctx, `SELECT 1`)
	require.NoError(t, err)
	require.False(t, etx.Broken())
	require.NoError(t, etx.Rollback(ctx))

	etx, err = d.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = etx.Rollback(ctx) })
	b.refuse.Store(true)
	require.Equal(t, 1, b.breakAll())
	_, err = d.UnwrapTx(etx).Exec(ctx, `SELECT 1`)
	require.Error(t, err)
	require.True(t, etx.Broken())
	_ = etx.Rollback(ctx) // nothing to roll back: BEGIN was never sent
	require.True(t, etx.Broken(), "after the transaction ended")

	b.refuse.Store(false)
	etx, err = d.Begin(ctx)
	require.NoError(t, err)
	_, err = d.UnwrapTx(etx).Exec(ctx, `SELECT 1`)
	require.NoError(t, err)
	require.False(t, etx.Broken())
	require.NoError(t, etx.Commit(ctx))
}

// TestSubscriptionHandlerConnectionBreaks breaks the pool's connections
// as a handler begins, with MaxAttempts 1: a handler failure would stop
// the subscription. It must go on and handle every event once, whether
// the transaction begins on a fresh connection at once ("Handler's") or
// its connection stays broken after BEGIN's retries, because the pool
// hands out more broken connections than those ("All"): the worker then
// retries as after a database error.
func TestSubscriptionHandlerConnectionBreaks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		warm int // connections opened and used just before
	}{
		{"Handler's", 0},
		{"All", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s0, shared, schema := newSchemaStore(t, nil, nil)
			appendN(t, s0, 50, 5)
			pool, b := breakablePool(t, 6)
			s := storeOn(t, pool, schema, &meowmxpgx.Config{DisableNotify: true}, nil)
			if tc.warm > 0 {
				warm(t, pool, tc.warm)
			}
			var broken atomic.Int32
			seen := seenHandler(schema, 0)
			handler := func(ctx context.Context, tx pgx.Tx, ev *meowmx.RecordedEvent) error {
				if broken.Load() == 0 {
					broken.Store(int32(b.breakAll()))
				}
				return seen(ctx, tx, ev)
			}
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- s.RunSubscription(runCtx, &meowmx.SubscriptionConfig[pgx.Tx]{
					Name: "broken", Handler: meowmx.HandlerFunc[pgx.Tx](handler), MaxAttempts: 1,
					CheckpointEvery: 10, LockInterval: 100 * time.Millisecond,
				})
			}()
			table := pgx.Identifier{schema, "seen"}.Sanitize()
			deadline := time.Now().Add(30 * time.Second)
			for {
				var n int
				require.NoError(t, shared.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n))
				if n == 50 {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("RunSubscription returned after %d events: %v", n, err)
				case <-time.After(20 * time.Millisecond):
				}
				require.True(t, time.Now().Before(deadline), "%d of 50 events handled", n)
			}
			cancel()
			require.NoError(t, <-done)
			require.Positive(t, broken.Load())
			t.Logf("%d connections broken", broken.Load())
			checkSeen(t, shared, schema, 50)
			_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "c0"}, meowmx.AnyVersion,
				meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{}`)})
			require.NoError(t, err, "the pool does not recover")
		})
	}
}
