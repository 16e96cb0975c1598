package meowmxpgx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
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

// childEnv makes the test binary a subscription worker (see
// TestSubscriptionTakeoverProcess) instead of running tests.
const childEnv = "MEOWMX_TEST_SUBSCRIPTION_CHILD"

// storeOn opens a store on an existing schema, as another process would.
func storeOn(t testing.TB, pool *pgxpool.Pool, schema string, cfg *meowmxpgx.Config, scfg *meowmx.Config) *meowmx.Store[pgx.Tx] {
	t.Helper()
	c := meowmxpgx.Config{Schema: schema}
	if cfg != nil {
		c = *cfg
		c.Schema = schema
	}
	driver, err := meowmxpgx.New(pool, &c)
	require.NoError(t, err)
	s, err := meowmx.NewStore(driver, scfg)
	require.NoError(t, err)
	return s
}

// newSchemaStore returns a migrated store with a "seen" table: the ledger
// of a transactional handler, which counts the events committed twice in
// dups.
func newSchemaStore(t testing.TB, cfg *meowmxpgx.Config, scfg *meowmx.Config) (*meowmx.Store[pgx.Tx], *pgxpool.Pool, string) {
	t.Helper()
	pool, schema := dbtest.Schema(t)
	s := storeOn(t, pool, schema, cfg, scfg)
	_, err := s.Migrate(context.Background(), nil)
	require.NoError(t, err)
	_, err = pool.Exec(context.Background(), `CREATE TABLE `+pgx.Identifier{schema, "seen"}.Sanitize()+
		` (event_id BIGINT PRIMARY KEY, seq BIGSERIAL, stream TEXT NOT NULL, version BIGINT NOT NULL, dups INT NOT NULL DEFAULT 0)`)
	require.NoError(t, err)
	return s, pool, schema
}

// seenHandler records each event in the seen table, in the handler's
// transaction.
func seenHandler(schema string, slow time.Duration) meowmx.HandlerFunc[pgx.Tx] {
	table := pgx.Identifier{schema, "seen"}.Sanitize()
	return func(ctx context.Context, tx pgx.Tx, ev *meowmx.RecordedEvent) error {
		time.Sleep(slow)
		_, err := tx.Exec(ctx, `INSERT INTO `+table+` AS s (event_id, stream, version) VALUES ($1, $2, $3)
			ON CONFLICT (event_id) DO UPDATE SET dups = s.dups + 1`,
			ev.Position.EventID, ev.StreamID.String(), ev.Version)
		return err
	}
}

// checkSeen checks that the seen table has each of n events once, and
// each stream in version order.
func checkSeen(t *testing.T, pool *pgxpool.Pool, schema string, n int) {
	t.Helper()
	rows, _ := pool.Query(context.Background(), `SELECT stream, version, dups FROM `+pgx.Identifier{schema, "seen"}.Sanitize()+` ORDER BY seq`)
	type row struct {
		Stream  string
		Version int64
		Dups    int
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	require.Len(t, got, n)
	next := map[string]int64{}
	for _, r := range got {
		require.Zero(t, r.Dups, "%s version %d handled twice", r.Stream, r.Version)
		require.Equal(t, next[r.Stream], r.Version, "stream %s out of order", r.Stream)
		next[r.Stream]++
	}
}

func appendN(t testing.TB, s *meowmx.Store[pgx.Tx], n, streams int) {
	t.Helper()
	for i := range n {
		_, err := s.Append(context.Background(), meowmx.StreamID{Type: "cat", ID: fmt.Sprint("c", i%streams)}, meowmx.AnyVersion,
			meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
}

func run(t *testing.T, s *meowmx.Store[pgx.Tx], cfg *meowmx.SubscriptionConfig[pgx.Tx]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunSubscription(ctx, cfg) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t testing.TB, s *meowmx.Store[pgx.Tx], name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, s.WaitForSubscription(ctx, name))
}

// owner returns the id of the worker whose lease on a subscription holds,
// or "".
func owner(t *testing.T, s *meowmx.Store[pgx.Tx], name string) string {
	t.Helper()
	subs, err := s.Subscriptions(context.Background())
	require.NoError(t, err)
	for _, sub := range subs {
		if sub.Name == name && sub.Owner != nil {
			return sub.Owner.ID
		}
	}
	return ""
}

// TestSubscriptionTakeoverHungOwner: the owner hangs in the middle of a
// batch, after writing, holding its connection (as a frozen process or a
// stuck handler would): its lease lapses, a standby takes over, and the
// owner's batch, when it goes on, is fenced out and rolled back; the
// former owner stands by.
func TestSubscriptionTakeoverHungOwner(t *testing.T) {
	t.Parallel()
	s, pool, schema := newSchemaStore(t, nil, nil)
	const n = 50
	appendN(t, s, n, 5)
	name := "takeover"
	inBatch, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	inner := seenHandler(schema, 0)
	cfg := func(h meowmx.Handler[pgx.Tx]) *meowmx.SubscriptionConfig[pgx.Tx] {
		return &meowmx.SubscriptionConfig[pgx.Tx]{Name: name, AggregateTypes: []string{"cat"}, BatchSize: 10,
			LockInterval: 20 * time.Millisecond, LeaseTimeout: 300 * time.Millisecond, PollInterval: 10 * time.Millisecond,
			Handler: h}
	}
	stopOwner := run(t, s, cfg(meowmx.HandlerFunc[pgx.Tx](func(ctx context.Context, tx pgx.Tx, ev *meowmx.RecordedEvent) error {
		if err := inner(ctx, tx, ev); err != nil {
			return err
		}
		if ev.Version == 3 { // in the middle of a batch, after writing
			once.Do(func() { close(inBatch); <-release })
		}
		return nil
	})))
	<-inBatch
	hung := owner(t, s, name)
	require.NotEmpty(t, hung)
	standbyStore := storeOn(t, pool, schema, nil, nil)
	stopStandby := run(t, standbyStore, cfg(inner))
	// The lease lapses while the owner hangs: the standby takes over.
	require.Eventually(t, func() bool {
		o := owner(t, s, name)
		return o != "" && o != hung
	}, 30*time.Second, 5*time.Millisecond)
	close(release) // the former owner's commit is fenced out
	appendN(t, s, 10, 5)
	waitFor(t, s, name)
	require.NotEqual(t, hung, owner(t, s, name), "the former owner stands by")
	require.NoError(t, stopOwner())
	require.NoError(t, stopStandby())
	checkSeen(t, pool, schema, n+10)
}

// TestSubscriptionTakeoverProcess kills a worker process (SIGKILL) while
// it handles a batch; a worker in this process takes over.
func TestSubscriptionTakeoverProcess(t *testing.T) {
	t.Parallel()
	s, pool, schema := newSchemaStore(t, nil, nil)
	const n = 300
	appendN(t, s, n, 10)
	name := "child"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+schema)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	seen := func() int {
		var k int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM `+pgx.Identifier{schema, "seen"}.Sanitize()).Scan(&k))
		return k
	}
	require.Eventually(t, func() bool { return seen() >= 25 }, 60*time.Second, 5*time.Millisecond, "child output: %s", &out)
	standby := run(t, storeOn(t, pool, schema, nil, nil), childConfig(schema, 0))
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	killed = true
	require.Less(t, seen(), n, "killed before it finished")
	waitFor(t, s, name)
	require.NoError(t, standby())
	checkSeen(t, pool, schema, n)
}

func childConfig(schema string, slow time.Duration) *meowmx.SubscriptionConfig[pgx.Tx] {
	return &meowmx.SubscriptionConfig[pgx.Tx]{Name: "child", AggregateTypes: []string{"cat"}, BatchSize: 20,
		CheckpointEvery: 5, LockInterval: 20 * time.Millisecond, LeaseTimeout: 500 * time.Millisecond,
		PollInterval: 10 * time.Millisecond, Handler: seenHandler(schema, slow)}
}

// runChild runs the subscription until killed.
func runChild(schema string) int {
	ctx := context.Background()
	pool, err := dbtest.NewPool(ctx, 16) // a member of a group of 8 partitions handles 8 at once
	if err != nil {
		fmt.Println(err)
		return 1
	}
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	s, err := meowmx.NewStore(driver, nil)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	cfg := childConfig(schema, 2*time.Millisecond)
	if p := os.Getenv(childPartitionsEnv); p != "" {
		cfg = groupChildConfig(schema, p)
	}
	if name := os.Getenv(benchChildEnv); name != "" {
		cfg = benchChildConfig(name)
	}
	fmt.Println(s.RunSubscription(ctx, cfg))
	return 1
}

// TestSubscriptionSlowHandler: a handler that takes long does not hold the
// other subscriptions up, as long as it has not written: its transaction
// has no transaction id and holds no horizon back. One that wrote and then
// waits does hold it back, and the lag listing and the log name its
// session.
func TestSubscriptionSlowHandler(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, pool, schema := newSchemaStore(t, nil, &meowmx.Config{Logger: logger})
	ctx := context.Background()
	appendN(t, s, 5, 5)

	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	pids := make(chan int32, 1)
	slow := func(write bool) meowmx.HandlerFunc[pgx.Tx] {
		return func(ctx context.Context, tx pgx.Tx, ev *meowmx.RecordedEvent) error {
			if write {
				if err := seenHandler(schema, 0)(ctx, tx, ev); err != nil {
					return err
				}
			}
			once.Do(func() {
				var pid int32
				if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err == nil {
					pids <- pid
				}
				close(blocked)
				<-release
			})
			return nil
		}
	}
	var fast sync.Map
	fastCfg := &meowmx.SubscriptionConfig[pgx.Tx]{Name: "fast", PollInterval: 10 * time.Millisecond,
		HorizonWarnAfter: 50 * time.Millisecond,
		Handler: meowmx.HandlerFunc[pgx.Tx](func(_ context.Context, _ pgx.Tx, ev *meowmx.RecordedEvent) error {
			fast.Store(ev.Position, true)
			return nil
		})}
	count := func() int {
		n := 0
		fast.Range(func(any, any) bool { n++; return true })
		return n
	}
	run(t, s, fastCfg)

	// Read-only so far: the slow handler holds nothing back.
	stopSlow := run(t, s, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "slow", Handler: slow(false)})
	<-blocked
	<-pids
	appendN(t, s, 20, 5)
	require.Eventually(t, func() bool { return count() == 25 }, 30*time.Second, 5*time.Millisecond)
	close(release)
	require.NoError(t, stopSlow())

	// Written, then slow: it holds the horizon back, and is named.
	blocked, release, once = make(chan struct{}), make(chan struct{}), sync.Once{}
	stopSlow = run(t, s, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "slow-writer", Handler: slow(true),
		PollInterval: 10 * time.Millisecond})
	<-blocked
	var closeOnce sync.Once
	unblock := func() { closeOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // never leave the horizon held for the other tests
	pid := <-pids
	appendN(t, s, 1, 1)
	var subs []*meowmx.SubscriptionInfo
	require.Eventually(t, func() bool {
		var err error
		subs, err = s.Subscriptions(ctx)
		require.NoError(t, err)
		for _, sub := range subs {
			if sub.Name == "fast" && sub.Waiting > 0 {
				for _, h := range sub.HorizonHeldBy {
					if h.PID == pid {
						require.Equal(t, "idle in transaction", h.State)
						return true
					}
				}
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), fmt.Sprintf("pid=%d", pid))
	}, 30*time.Second, 10*time.Millisecond, "logs: %s", &logs)
	require.Contains(t, logs.String(), "holds the commit horizon back")
	unblock()
	require.NoError(t, stopSlow())
	require.Eventually(t, func() bool { return count() == 26 }, 30*time.Second, 5*time.Millisecond)
	_ = pool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSubscriptionNotify: with polling practically off, notifications from
// another store (another process) wake the subscription, from Append and
// from AppendTx alike (which announces before its caller commits).
func TestSubscriptionNotify(t *testing.T) {
	t.Parallel()
	s, pool, schema := newSchemaStore(t, nil, nil)
	writer := storeOn(t, pool, schema, nil, nil)
	var got sync.Map
	count := func() int {
		n := 0
		got.Range(func(any, any) bool { n++; return true })
		return n
	}
	run(t, s, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "notify", PollInterval: time.Hour,
		Handler: meowmx.HandlerFunc[pgx.Tx](func(_ context.Context, _ pgx.Tx, ev *meowmx.RecordedEvent) error {
			got.Store(ev.Position, true)
			return nil
		})})
	waitFor(t, s, "notify")
	appendN(t, writer, 1, 1)
	require.Eventually(t, func() bool { return count() == 1 }, 30*time.Second, time.Millisecond)

	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = writer.AppendTx(ctx, tx, meowmx.StreamID{Type: "cat", ID: "tx"}, meowmx.NoStream,
		meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	// AppendTx announces the events before the caller commits: the
	// worker, woken too early, must look again until the commit, not wait
	// for its next poll.
	time.Sleep(20 * time.Millisecond) // let the notification arrive first (not an assertion)
	require.Equal(t, 1, count(), "not committed yet")
	require.NoError(t, tx.Commit(ctx))
	require.Eventually(t, func() bool { return count() == 2 }, 30*time.Second, time.Millisecond)

	// The notification arrives while an older transaction holds the
	// horizon below the event: the worker looks again soon, not at its
	// next poll (an hour).
	blocker, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = blocker.Rollback(ctx) }()
	_, err = blocker.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)
	appendN(t, writer, 1, 1)
	time.Sleep(20 * time.Millisecond) // let the notification arrive first (not an assertion)
	require.Equal(t, 2, count(), "held back by the horizon")
	require.NoError(t, blocker.Rollback(ctx))
	require.Eventually(t, func() bool { return count() == 3 }, 30*time.Second, time.Millisecond)

	// The listening connection dies: the store reconnects, and events
	// appended meanwhile are delivered without waiting for a poll.
	channel := s.Driver().(*meowmxpgx.Driver).Channel()
	var pid int32
	require.NoError(t, pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`,
		"meowmx listen "+channel).Scan(&pid))
	_, err = pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
	require.NoError(t, err)
	appendN(t, writer, 1, 1)
	require.Eventually(t, func() bool { return count() == 4 }, 30*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> $2`,
			"meowmx listen "+channel, pid).Scan(&n))
		return n == 1
	}, 30*time.Second, 5*time.Millisecond, "listening again")
	appendN(t, writer, 1, 1)
	require.Eventually(t, func() bool { return count() == 5 }, 30*time.Second, time.Millisecond)
}

// TestSubscriptionPollingOnly: with notifications off (a transaction-mode
// pooler), subscriptions still see every event, by polling.
func TestSubscriptionPollingOnly(t *testing.T) {
	t.Parallel()
	off := &meowmxpgx.Config{DisableNotify: true}
	s, pool, schema := newSchemaStore(t, off, nil)
	require.Nil(t, s.Driver().Capabilities().Listener, "DisableNotify leaves the driver without a listener")
	writer := storeOn(t, pool, schema, off, nil)
	stop := run(t, s, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "poll", PollInterval: 5 * time.Millisecond,
		MaxPollInterval: 20 * time.Millisecond, Handler: seenHandler(schema, 0), CheckpointEvery: 3})
	appendN(t, writer, 40, 4)
	waitFor(t, s, "poll")
	require.NoError(t, stop())
	checkSeen(t, pool, schema, 40)
}

// TestSubscriptionCheckpointAhead: a checkpoint ahead of the database's
// transaction ids (a restored dump) is reported, never waited on, and a
// reset rebases it.
func TestSubscriptionCheckpointAhead(t *testing.T) {
	t.Parallel()
	s, pool, schema := newSchemaStore(t, nil, nil)
	ctx := context.Background()
	appendN(t, s, 3, 1)
	cfg := &meowmx.SubscriptionConfig[pgx.Tx]{Name: "ahead", Handler: seenHandler(schema, 0)}
	stop := run(t, s, cfg)
	waitFor(t, s, "ahead")
	require.NoError(t, stop())
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	last := subs[0].Position

	future := meowmx.Position{TransactionID: last.TransactionID + 1<<40, EventID: last.EventID}
	require.ErrorIs(t, s.ResetSubscription(ctx, "ahead", future), meowmx.ErrInvalidArgument,
		"a reset after the last event is refused")
	// As a restored dump leaves it.
	_, err = pool.Exec(ctx, `UPDATE `+pgx.Identifier{schema}.Sanitize()+`.es_event_subscriptions
		SET last_transaction_id = $1::text::xid8, last_event_id = $2 WHERE subscription_name = 'ahead'`,
		fmt.Sprint(future.TransactionID), future.EventID)
	require.NoError(t, err)
	subs, err = s.Subscriptions(ctx)
	require.NoError(t, err)
	require.True(t, subs[0].Ahead)
	ctx2, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = s.RunSubscription(ctx2, cfg)
	var ae *meowmx.CheckpointAheadError
	require.ErrorAs(t, err, &ae)
	require.ErrorIs(t, err, meowmx.ErrCheckpointAhead)
	require.Equal(t, future, ae.Checkpoint)

	// Rebase: back to the last handled event, found by its id.
	require.NoError(t, s.ResetSubscription(ctx, "ahead", last))
	appendN(t, s, 2, 1)
	stop = run(t, s, cfg)
	waitFor(t, s, "ahead")
	require.NoError(t, stop())
	checkSeen(t, pool, schema, 5)
}

// TestSubscriptionNotMigrated: without the tables, RunSubscription says so
// rather than retrying forever.
func TestSubscriptionNotMigrated(t *testing.T) {
	t.Parallel()
	pool, schema := dbtest.Schema(t)
	s := storeOn(t, pool, schema, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.RunSubscription(ctx, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "x",
		Handler: meowmx.HandlerFunc[pgx.Tx](func(context.Context, pgx.Tx, *meowmx.RecordedEvent) error { return nil })})
	require.ErrorIs(t, err, meowmx.ErrNotMigrated)
}

// TestHandlerTxLazy checks that the transaction handed to handlers, which
// sends BEGIN only when first used, holds whatever runs through it, by any
// of its methods (its connection, a batch, a savepoint included): it is
// rolled back with the handler's failure, and committed with the
// checkpoint.
func TestHandlerTxLazy(t *testing.T) {
	ctx := context.Background()
	s, pool, schema := newSchemaStore(t, nil, nil)
	seen := pgx.Identifier{schema, "seen"}.Sanitize()
	_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "lazy"}, meowmx.NoStream,
		meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)

	ways := map[string]func(ctx context.Context, tx pgx.Tx, id int64) error{
		"Exec": func(ctx context.Context, tx pgx.Tx, id int64) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+seen+` (event_id, stream, version) VALUES ($1, 'Exec', 0)`, id)
			return err
		},
		"Conn": func(ctx context.Context, tx pgx.Tx, id int64) error {
			_, err := tx.Conn().Exec(ctx, `INSERT INTO `+seen+` (event_id, stream, version) VALUES ($1, 'Conn', 0)`, id)
			return err
		},
		"SendBatch": func(ctx context.Context, tx pgx.Tx, id int64) error {
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO `+seen+` (event_id, stream, version) VALUES ($1, 'SendBatch', 0)`, id)
			return tx.SendBatch(ctx, b).Close()
		},
		"Savepoint": func(ctx context.Context, tx pgx.Tx, id int64) error {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, `INSERT INTO `+seen+` (event_id, stream, version) VALUES ($1, 'Savepoint', 0)`, id); err != nil {
				return err
			}
			return sp.Commit(ctx)
		},
	}
	offset := int64(0)
	for name, write := range ways {
		offset += 1000 // seen.event_id is unique
		t.Run(name, func(t *testing.T) {
			count := func() int {
				var n int
				require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+seen+` WHERE stream = $1`, name).Scan(&n))
				return n
			}
			fail := true
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- s.RunSubscription(sctx, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "lazy-" + name,
					MaxAttempts: 2, RetryBackoff: time.Millisecond,
					Handler: meowmx.HandlerFunc[pgx.Tx](func(ctx context.Context, tx pgx.Tx, ev *meowmx.RecordedEvent) error {
						if err := write(ctx, tx, offset+ev.Position.EventID); err != nil {
							return err
						}
						if fail {
							fail = false
							return errors.New("first attempt fails after writing")
						}
						return nil
					})})
			}()
			wctx, wcancel := context.WithTimeout(sctx, 30*time.Second)
			defer wcancel()
			require.NoError(t, s.WaitForSubscription(wctx, "lazy-"+name))
			cancel()
			require.NoError(t, <-done)
			require.Equal(t, 1, count(), "the failed attempt's write rolled back, the second committed once")
		})
	}
}
