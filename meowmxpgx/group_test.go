package meowmxpgx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
)

// childPartitionsEnv makes the child worker (see runChild) a member of the
// consumer group "group" with that many partitions, whose handler takes
// 1 ms an event.
const childPartitionsEnv = "MEOWMX_TEST_CHILD_PARTITIONS"

func groupChildConfig(schema, partitions string) *meowmx.SubscriptionConfig[pgx.Tx] {
	n, _ := strconv.Atoi(partitions)
	return &meowmx.SubscriptionConfig[pgx.Tx]{Name: "group", Partitions: n, AggregateTypes: []string{"cat"},
		BatchSize: 20, CheckpointEvery: 5, LockInterval: 20 * time.Millisecond, LeaseTimeout: 500 * time.Millisecond,
		PollInterval: 10 * time.Millisecond, Handler: seenHandler(schema, time.Millisecond)}
}

// child is a worker process: the test binary running runChild.
type child struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done bool
}

func startChild(t testing.TB, schema string, env ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	c.cmd.Env = append(append(os.Environ(), childEnv+"="+schema), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	require.NoError(t, c.cmd.Start())
	t.Cleanup(func() { c.kill() })
	return c
}

// kill ends the process with SIGKILL: no deferred call, no lease released.
func (c *child) kill() {
	if !c.done {
		c.done = true
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	}
}

// groupOwners counts the partitions of the group each worker owns.
func groupOwners(t *testing.T, s *meowmx.Store[pgx.Tx], name string) (map[int]int, *meowmx.SubscriptionInfo) {
	t.Helper()
	subs, err := s.Subscriptions(context.Background())
	require.NoError(t, err)
	for _, sub := range subs {
		if sub.Name == name {
			byPID := map[int]int{}
			for _, p := range sub.PartitionInfos {
				if p.Owner != nil {
					byPID[p.Owner.PID]++
				}
			}
			return byPID, sub
		}
	}
	return nil, nil
}

// TestGroupProcesses runs a consumer group of 8 partitions in worker
// processes while 8 writers commit out of order: one worker first, then 3
// more, then 2 of them are killed (SIGKILL) in the middle of their
// batches, then 2 more start. At the end every event was handled exactly
// once, each stream in version order, and the 4 live workers hold 2
// partitions each.
func TestGroupProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, schema := newSchemaStore(t, nil, nil)
	const partitions, writers, perWriter, streams = 8, 8, 150, 40
	env := childPartitionsEnv + "=" + strconv.Itoa(partitions)

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if err := appendSlowly(ctx, s, fmt.Sprint("c", (w*perWriter+i)%streams)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}

	seen := func() int {
		var k int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "seen"}.Sanitize()).Scan(&k))
		return k
	}
	var workers []*child
	outputs := func() string {
		var b bytes.Buffer
		for i, w := range workers {
			fmt.Fprintf(&b, "--- worker %d (pid %d):\n%s\n", i, w.cmd.Process.Pid, w.out.String())
		}
		return b.String()
	}
	balanced := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			owners, _ := groupOwners(t, s, "group")
			if len(owners) != n {
				return false
			}
			for _, k := range owners {
				if k != partitions/n && k != (partitions+n-1)/n {
					return false
				}
			}
			return true
		}, 60*time.Second, 10*time.Millisecond, "%d workers share the partitions; outputs:\n%s", n, lazy(outputs))
	}

	workers = append(workers, startChild(t, schema, env))
	require.Eventually(t, func() bool { return seen() >= 50 }, 60*time.Second, 5*time.Millisecond, "%s", lazy(outputs))
	balanced(1)
	for range 3 {
		workers = append(workers, startChild(t, schema, env))
	}
	balanced(4)
	before := seen()
	workers[1].kill()
	workers[2].kill()
	for range 2 {
		workers = append(workers, startChild(t, schema, env))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := writers * perWriter
	require.Less(t, before, total, "workers were killed while events remained")
	balanced(4)
	waitFor(t, s, "group")
	checkSeen(t, pool, schema, total)
}

// appendSlowly appends an event in a transaction that waits up to 3 ms
// before it commits, so that transactions commit out of order.
func appendSlowly(ctx context.Context, s *meowmx.Store[pgx.Tx], id string) error {
	for {
		etx, err := s.Driver().Begin(ctx)
		if err != nil {
			return err
		}
		_, err = s.AppendTx(ctx, s.Driver().UnwrapTx(etx), meowmx.StreamID{Type: "cat", ID: id}, meowmx.AnyVersion,
			meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{}`)})
		if err == nil {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			err = etx.Commit(ctx)
		}
		if err == nil {
			return nil
		}
		_ = etx.Rollback(ctx)
		if !retryableAppend(err) {
			return err
		}
	}
}

// lazy formats a message only when it is printed.
type lazy func() string

func (f lazy) String() string { return f() }

// retryableAppend tells whether an append in a transaction of its own
// may succeed when tried again: a conflict (ErrConcurrency: with
// AnyVersion, a transaction that wrote the stream after this one began
// committed first), a serialization failure or a deadlock.
func retryableAppend(err error) bool {
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) {
		switch coded.SQLState() {
		case "40001", "40P01":
			return true
		}
	}
	return errors.Is(err, meowmx.ErrConcurrency)
}

// TestPartitionOfInSQL: PostgreSQL's partition of a stream, as the
// partitions' reads compute it (es_events.partition_hash, a generated
// column), is meowmx.PartitionOf's, for each aggregate id type.
func TestPartitionOfInSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ids := map[string][]string{
		"TEXT":     {"a", "felix", "0b3c5d6e-1f2a-4b5c-8d9e-0f1a2b3c4d5e", "ünïcødé 猫", "with space", "x\x01y"},
		"UUID":     {"0b3c5d6e-1f2a-4b5c-8d9e-0f1a2b3c4d5e", "00000000-0000-0000-0000-000000000001"},
		"CHAR(20)": {"a", "felix", "stream-with-20-chars"},
	}
	for i := range 200 {
		ids["TEXT"] = append(ids["TEXT"], fmt.Sprint("stream-", i))
		ids["UUID"] = append(ids["UUID"], fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i*7919))
		ids["CHAR(20)"] = append(ids["CHAR(20)"], fmt.Sprint("s", i))
	}
	for idType, ids := range ids {
		t.Run(idType, func(t *testing.T) {
			t.Parallel()
			pool, schema := dbtest.Schema(t)
			s := storeOn(t, pool, schema, nil, nil)
			_, err := s.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: idType})
			require.NoError(t, err)
			for _, id := range ids {
				_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: id}, meowmx.NoStream, meowmx.EventData{Type: "E", Data: []byte(`{}`)})
				require.NoError(t, err, id)
			}
			for _, n := range []int{2, 3, 8, 1000} {
				for _, id := range ids {
					var got int
					require.NoError(t, pool.QueryRow(ctx, `SELECT DISTINCT (partition_hash % $2::int)::int FROM `+
						pgx.Identifier{schema, "es_events"}.Sanitize()+` WHERE aggregate_id::text = $1`, id, n).Scan(&got), id)
					require.Equal(t, meowmx.PartitionOf(id, n), got, "%q of %d", id, n)
				}
			}
		})
	}
}
