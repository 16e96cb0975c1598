package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxpgx"
)

func groupedStore(t *testing.T) (*meowmx.Store[pgx.Tx], *meowmxpgx.Driver) {
	t.Helper()
	s := newStore(t, &meowmx.Config{GroupCommit: meowmx.GroupCommitConfig{MaxBatch: 16}})
	return s, s.Driver().(*meowmxpgx.Driver)
}

func event(data string, id uuid.UUID) meowmx.EventData {
	return meowmx.EventData{Type: "E", Data: json.RawMessage(data), UUID: id}
}

// holder opens a transaction on d's pool that the test ends, and returns
// it with its backend pid.
func holder(t *testing.T, d *meowmxpgx.Driver) (pgx.Tx, int) {
	t.Helper()
	ctx := context.Background()
	tx, err := d.Pool().Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	var pid int
	require.NoError(t, tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	return tx, pid
}

// waitBlocked waits until n backends wait for a lock held by pid.
func waitBlocked(t *testing.T, d *meowmxpgx.Driver, pid, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var blocked int
		err := d.Pool().QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE $1::int = ANY(pg_blocking_pids(pid))", pid).Scan(&blocked)
		require.NoError(t, err)
		return blocked >= n
	}, 30*time.Second, 5*time.Millisecond)
}

// lockEvents blocks every insert into d's events table until the test
// ends the transaction it returns, with its backend pid.
func lockEvents(t *testing.T, d *meowmxpgx.Driver) (pgx.Tx, int) {
	t.Helper()
	tx, pid := holder(t, d)
	_, err := tx.Exec(context.Background(), "LOCK TABLE "+pgx.Identifier{d.Schema()}.Sanitize()+".es_events IN EXCLUSIVE MODE")
	require.NoError(t, err)
	return tx, pid
}

// requireRetriedOnce retries, twice, an append of one event with UUID id
// to a new stream, whose first attempt failed, and checks that the event
// is stored exactly once.
func requireRetriedOnce(t *testing.T, s *meowmx.Store[pgx.Tx], stream string, data string, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	for range 2 {
		res, err := s.Append(ctx, cat(stream), meowmx.NoStream, event(data, id))
		require.NoError(t, err)
		require.Equal(t, int64(0), res.Version)
	}
	evs, err := s.ReadStream(ctx, stream, nil)
	require.NoError(t, err)
	require.Len(t, evs, 1)
}

func TestGroupCommitWinners(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := groupedStore(t)
	const writers, streams, rounds = 64, 8, 8
	for i := range streams {
		_, err := s.Append(ctx, cat(fmt.Sprintf("shared-%d", i)), meowmx.NoStream, event(`0`, uuid.Nil))
		require.NoError(t, err)
	}
	for r := range rounds {
		var wg sync.WaitGroup
		wins := make([][]int, streams)
		var mu sync.Mutex
		for w := range writers {
			wg.Go(func() {
				// Half the writers race on shared streams at an exact
				// version, the others each append to a new stream.
				if w%2 == 1 {
					_, err := s.Append(ctx, cat(fmt.Sprintf("own-%d-%d", r, w)), meowmx.NoStream, event(`1`, uuid.New()), event(`2`, uuid.New()))
					require.NoError(t, err)
					return
				}
				i := w / 2 % streams
				res, err := s.Append(ctx, cat(fmt.Sprintf("shared-%d", i)), meowmx.Exact(int64(2*r)), event(fmt.Sprintf(`{"w":%d}`, w), uuid.Nil), event(`"second"`, uuid.Nil))
				if err != nil {
					var ce *meowmx.ConcurrencyError
					require.ErrorAs(t, err, &ce)
					require.Equal(t, int64(2*r+2), ce.Actual, "the winner is in the same batch or committed before")
					return
				}
				require.Equal(t, int64(2*r+2), res.Version)
				mu.Lock()
				wins[i] = append(wins[i], w)
				mu.Unlock()
			})
		}
		wg.Wait()
		for i := range streams {
			require.Len(t, wins[i], 1, "round %d, stream %d: exactly one winner", r, i)
		}
	}
	for i := range streams {
		evs, err := s.ReadStream(ctx, fmt.Sprintf("shared-%d", i), nil)
		require.NoError(t, err)
		require.Len(t, evs, 1+2*rounds)
		for v := 1; v < len(evs); v += 2 {
			require.Equal(t, `"second"`, string(evs[v+1].Data), "an append's events stay together")
			require.Equal(t, evs[v].Position.TransactionID, evs[v+1].Position.TransactionID)
		}
	}
	for r := range rounds {
		for w := 1; w < writers; w += 2 {
			evs, err := s.ReadStream(ctx, fmt.Sprintf("own-%d-%d", r, w), nil)
			require.NoError(t, err)
			require.Len(t, evs, 2)
		}
	}
}

// batchItem is the driver's input for an append to cat/id of one event
// per UUID, or of two events without UUIDs.
func batchItem(id string, expected meowmx.ExpectedVersion, uuids ...uuid.UUID) *meowmxdriver.EventAppendParams {
	p := &meowmxdriver.EventAppendParams{Stream: meowmx.StreamID{Type: "cat", ID: id}, Expected: expected}
	for i, u := range uuids {
		p.EventUUIDs = append(p.EventUUIDs, u[:])
		p.EventTypes = append(p.EventTypes, "E")
		p.Data = append(p.Data, []byte(fmt.Sprint(i)))
		p.Metadata = append(p.Metadata, nil)
	}
	if len(uuids) == 0 {
		p.EventTypes, p.Data, p.Metadata = []string{"E", "F"}, [][]byte{[]byte(`1`), []byte(`2`)}, [][]byte{nil, []byte(`{}`)}
	}
	return p
}

// TestGroupCommitOneRound sends a batch of appends to distinct streams,
// one statement for all, with every kind of expected version, refused and
// written side by side.
func TestGroupCommitOneRound(t *testing.T) {
	t.Parallel()
	for _, v := range []struct{ perAppend, single bool }{{false, false}, {false, true}, {true, false}} {
		t.Run(fmt.Sprintf("perAppend=%v/oneEventEach=%v", v.perAppend, v.single), func(t *testing.T) {
			t.Parallel()
			perAppend := v.perAppend
			ctx := context.Background()
			s, d := groupedStore(t)
			meowmxpgx.SetPerAppend(d, perAppend)
			stored := uuid.New()
			for _, id := range []string{"exists", "any", "exact", "stale", "has", "uuid"} {
				_, err := s.Append(ctx, cat(id), meowmx.NoStream, event(`0`, uuid.Nil))
				require.NoError(t, err)
			}
			_, err := s.Append(ctx, cat("stored"), meowmx.NoStream, event(`0`, stored))
			require.NoError(t, err)
			_, err = s.Append(ctx, meowmx.StreamID{Type: "dog", ID: "dog"}, meowmx.NoStream, event(`0`, uuid.Nil))
			require.NoError(t, err)
			_, err = d.Pool().Exec(ctx, `INSERT INTO `+pgx.Identifier{d.Schema()}.Sanitize()+`.es_aggregates (id, version, aggregate_type) VALUES ('python', -1, 'cat')`)
			require.NoError(t, err)

			p := batchItem
			ps := []*meowmxdriver.EventAppendParams{
				p("any", meowmx.AnyVersion),                      // 0: appended at 1, 2
				p("dog", meowmx.AnyVersion),                      // 1: refused: another aggregate type
				p("exact", 0),                                    // 2: appended at 1, 2
				p("exists", meowmx.NoStream),                     // 3: refused: it exists
				p("has", meowmx.StreamExists),                    // 4: appended at 1, 2
				p("missing", meowmx.StreamExists),                // 5: refused: no stream
				p("new", meowmx.NoStream, uuid.New()),            // 6: appended at 0
				p("new-any", meowmx.AnyVersion),                  // 7: appended at 0, 1
				p("python", meowmx.NoStream),                     // 8: a Python client's empty stream: appended at 0, 1
				p("stale", 5),                                    // 9: refused: at 0
				p("uuid", meowmx.AnyVersion, uuid.New(), stored), // 10: refused: one of its UUIDs is stored
				p("wrong", 3),                                    // 11: refused: no stream
			}
			want := map[int][]int64{0: {1, 2}, 2: {1, 2}, 4: {1, 2}, 6: {0}, 7: {0, 1}, 8: {0, 1}}
			versions := map[string]int64{"any": 2, "dog": 0, "exists": 0, "python": 1, "stale": 0, "uuid": 0, "new-any": 1}
			if v.single { // each append keeps its first event: the statement without an event per row
				for i, p := range ps {
					p.EventTypes, p.Data, p.Metadata = p.EventTypes[:1], p.Data[:1], p.Metadata[:1]
					if p.EventUUIDs != nil && i != 10 {
						p.EventUUIDs = p.EventUUIDs[:1]
					}
				}
				ps[10].EventTypes, ps[10].Data, ps[10].Metadata, ps[10].EventUUIDs = ps[10].EventTypes[1:], ps[10].Data[1:], ps[10].Metadata[1:], ps[10].EventUUIDs[1:] // the stored UUID
				for i, w := range want {
					want[i] = w[:1]
				}
				versions["any"], versions["python"], versions["new-any"] = 1, 0, 0
			}
			results, err := d.EventAppendBatch(ctx, ps)
			require.NoError(t, err)
			var tx uint64
			for i, r := range results {
				if want[i] == nil {
					require.False(t, r.Appended, "append %d", i)
					continue
				}
				require.True(t, r.Appended, "append %d", i)
				var versions []int64
				for j, e := range r.Events {
					versions = append(versions, e.Version)
					if j > 0 {
						require.Greater(t, e.Position.EventID, r.Events[j-1].Position.EventID, "append %d: ids follow versions", i)
					}
					if tx == 0 {
						tx = e.Position.TransactionID
					}
					require.Equal(t, tx, e.Position.TransactionID, "one transaction")
				}
				require.Equal(t, want[i], versions, "append %d", i)
			}
			for _, id := range []string{"missing", "wrong"} {
				_, err := s.Stream(ctx, id)
				require.ErrorIs(t, err, meowmx.ErrStreamNotFound, id)
			}
			for id, version := range versions {
				st, err := s.Stream(ctx, id)
				require.NoError(t, err, id)
				require.Equal(t, version, st.Version, id)
			}
			evs, err := s.ReadStream(ctx, "python", nil)
			require.NoError(t, err)
			require.Len(t, evs, len(want[8]))
			if !v.single {
				require.Equal(t, []string{"E", "F"}, []string{evs[0].Type, evs[1].Type})
				require.Equal(t, `{}`, string(evs[1].Metadata))
			}
		})
	}
}

func TestGroupCommitSameStreamInOneBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, d := groupedStore(t)
	p := batchItem
	u1, u2, u3 := uuid.New(), uuid.New(), uuid.New()
	results, err := d.EventAppendBatch(ctx, []*meowmxdriver.EventAppendParams{
		p("a", meowmx.NoStream),
		p("a", 1),               // sees the first
		p("a", 1),               // refused: a is at 3 now
		p("a", meowmx.NoStream), // refused
		p("a", 3),
		p("b", meowmx.StreamExists), // refused: no b yet
		p("b", meowmx.AnyVersion),
		p("c", meowmx.AnyVersion, u1, u2),
		p("c", 1, u1, u2),                       // refused: stored by the append before
		p("d", meowmx.AnyVersion, u3, u2),       // refused: u2 is stored in c
		p("e", meowmx.NoStream, u3, uuid.New()), // the same UUID as d: d was refused
	})
	require.NoError(t, err)
	var appended []bool
	for _, r := range results {
		appended = append(appended, r.Appended)
	}
	require.Equal(t, []bool{true, true, false, false, true, false, true, true, false, false, true}, appended)
	require.Equal(t, []int64{4, 5}, []int64{results[4].Events[0].Version, results[4].Events[1].Version})
	require.Equal(t, results[0].Events[0].Position.TransactionID, results[6].Events[0].Position.TransactionID, "one transaction")
	require.Less(t, results[0].Events[1].Position.EventID, results[1].Events[0].Position.EventID, "events are numbered in append order")
}

// TestGroupCommitUniqueViolation appends in batches an event UUID that an
// open transaction holds: the statement waits for it, then fails with a
// unique violation when it commits. With one statement per append, the
// batch names the append; with a statement for several, the batch is sent
// again one statement per append, and the append, which now finds its UUID
// stored, is refused while the others commit.
func TestGroupCommitUniqueViolation(t *testing.T) {
	t.Parallel()
	for _, perAppend := range []bool{false, true} {
		t.Run(fmt.Sprintf("perAppend=%v", perAppend), func(t *testing.T) {
			t.Parallel()
			testUniqueViolation(t, perAppend)
		})
	}
}

func testUniqueViolation(t *testing.T, perAppend bool) {
	ctx := context.Background()
	s, d := groupedStore(t)
	meowmxpgx.SetPerAppend(d, perAppend)
	tx, pid := holder(t, d)
	dup := uuid.New()
	_, err := s.AppendTx(ctx, tx, cat("src"), meowmx.NoStream, event(`1`, dup))
	require.NoError(t, err)

	p := func(id string, u uuid.UUID) *meowmxdriver.EventAppendParams {
		return batchItem(id, meowmx.AnyVersion, u)
	}
	type batchOutcome struct {
		results []*meowmxdriver.EventAppendResult
		err     error
	}
	done := make(chan batchOutcome, 1)
	go func() {
		results, err := d.EventAppendBatch(ctx, []*meowmxdriver.EventAppendParams{p("before", uuid.New()), p("dst", dup), p("after", uuid.New())})
		done <- batchOutcome{results, err}
	}()
	waitBlocked(t, d, pid, 1)

	// Through the store, while that batch waits: the others commit, the
	// duplicates get the error they get without group commit.
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			u, stream := uuid.New(), cat(fmt.Sprintf("other-%d", i))
			if i%5 == 0 {
				u, stream = dup, cat(fmt.Sprintf("dst-%d", i))
			}
			_, errs[i] = s.Append(ctx, stream, meowmx.AnyVersion, event(`1`, u))
		})
	}
	waitBlocked(t, d, pid, 2)
	require.NoError(t, tx.Commit(ctx))

	out := <-done
	if perAppend {
		// The statement of "dst" failed: the batch names it and writes
		// nothing.
		var ie *meowmxdriver.BatchItemError
		require.ErrorAs(t, out.err, &ie)
		require.Equal(t, 1, ie.Index)
		require.ErrorIs(t, out.err, meowmxdriver.ErrDuplicate)
		for _, id := range []string{"before", "after"} {
			_, err := s.Stream(ctx, id)
			require.ErrorIs(t, err, meowmx.ErrStreamNotFound, "a failed batch writes nothing")
		}
	} else {
		require.NoError(t, out.err)
		require.Equal(t, []bool{true, false, true}, []bool{out.results[0].Appended, out.results[1].Appended, out.results[2].Appended})
		_, err := s.Stream(ctx, "dst")
		require.ErrorIs(t, err, meowmx.ErrStreamNotFound)
	}

	wg.Wait()
	for i, err := range errs {
		if i%5 == 0 {
			require.ErrorIs(t, err, meowmx.ErrDuplicateEvent, i)
			continue
		}
		require.NoError(t, err, i)
		evs, err := s.ReadStream(ctx, fmt.Sprintf("other-%d", i), nil)
		require.NoError(t, err)
		require.Len(t, evs, 1)
	}
}

func TestGroupCommitCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := groupedStore(t)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	single := newStore(t, &meowmx.Config{GroupCommit: meowmx.GroupCommitConfig{Disabled: true}})
	for _, store := range []*meowmx.Store[pgx.Tx]{s, single} {
		_, err := store.Append(cancelled, cat("never"), meowmx.NoStream, event(`1`, uuid.Nil))
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, meowmx.ErrCommitUnknown, "nothing was sent")
	}

	// Cancelled while its statement waits for a lock: the outcome is
	// unknown to the caller; a retry with the same UUID settles it.
	for _, store := range []*meowmx.Store[pgx.Tx]{s, single} {
		d := store.Driver().(*meowmxpgx.Driver)
		tx, pid := lockEvents(t, d)
		waiting, cancel := context.WithCancel(ctx)
		id := uuid.New()
		done := make(chan error, 1)
		go func() {
			_, err := store.Append(waiting, cat("waits"), meowmx.NoStream, event(`1`, id))
			done <- err
		}()
		waitBlocked(t, d, pid, 1)
		cancel()
		err := <-done
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, meowmx.ErrCommitUnknown)
		require.NoError(t, tx.Rollback(ctx))
		requireRetriedOnce(t, store, "waits", `1`, id)
	}
}

func TestGroupCommitConnectionKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, d := groupedStore(t)
	tx, pid := lockEvents(t, d)

	// Every batch waits for the lock; the test kills each batch's
	// connection until every caller has returned.
	const writers = 24
	ids := make([]uuid.UUID, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		ids[i] = uuid.New()
		wg.Go(func() {
			_, errs[i] = s.Append(ctx, cat(fmt.Sprintf("k-%d", i)), meowmx.NoStream, event(fmt.Sprintf(`%d`, i), ids[i]))
		})
	}
	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	killed := 0
	for done := false; !done; {
		select {
		case <-returned:
			done = true
		case <-time.After(5 * time.Millisecond):
			var n int
			err := d.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE $1::int = ANY(pg_blocking_pids(pid))`, pid).Scan(&n)
			require.NoError(t, err)
			killed += n
		}
	}
	require.Positive(t, killed)
	for i, err := range errs {
		require.Error(t, err, "writer %d: its batch's connection was killed", i)
		require.NotErrorIs(t, err, meowmx.ErrConcurrency)
	}
	require.NoError(t, tx.Rollback(ctx))

	// Retrying with the same UUIDs appends each exactly once.
	for i := range writers {
		requireRetriedOnce(t, s, fmt.Sprintf("k-%d", i), fmt.Sprintf(`%d`, i), ids[i])
	}
}

func cat(id string) meowmx.StreamID { return meowmx.StreamID{Type: "cat", ID: id} }

func TestGroupCommitIDTypes(t *testing.T) {
	t.Parallel()
	for _, idType := range []string{"UUID", "CHAR(36)"} {
		t.Run(idType, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool, schema := dbtest.Schema(t)
			d, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
			require.NoError(t, err)
			s, err := meowmx.NewStore(d, nil)
			require.NoError(t, err)
			_, err = s.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: idType})
			require.NoError(t, err)

			a, b := uuid.NewString(), uuid.NewString()
			if idType != "UUID" { // a UUID column refuses ids not in canonical form
				b = strings.ToUpper(b)
			}
			results, err := d.EventAppendBatch(ctx, []*meowmxdriver.EventAppendParams{
				batchItem(a, meowmx.NoStream),
				batchItem(b, meowmx.AnyVersion),
				batchItem(a, 1),
				batchItem(b, 0), // refused: b is at 1
			})
			require.NoError(t, err)
			require.True(t, results[0].Appended)
			require.True(t, results[1].Appended)
			require.True(t, results[2].Appended)
			require.Equal(t, int64(3), results[2].Events[1].Version)
			require.False(t, results[3].Appended)

			bad := "not-a-uuid-and-far-too-long-for-a-char-36-column"
			_, err = d.EventAppendBatch(ctx, []*meowmxdriver.EventAppendParams{
				batchItem(uuid.NewString(), meowmx.AnyVersion),
				batchItem(bad, meowmx.AnyVersion),
			})
			var ie *meowmxdriver.BatchItemError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, 1, ie.Index)
			require.ErrorIs(t, err, meowmxdriver.ErrInvalidInput)

			// Through the store, concurrently: the bad id gets an
			// argument error, the others commit.
			var wg sync.WaitGroup
			errs := make([]error, 16)
			for i := range errs {
				wg.Go(func() {
					id := uuid.NewString()
					if i%4 == 0 {
						id = bad
					}
					_, errs[i] = s.Append(ctx, cat(id), meowmx.AnyVersion, event(`1`, uuid.Nil))
				})
			}
			wg.Wait()
			for i, err := range errs {
				if i%4 == 0 {
					require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
				} else {
					require.NoError(t, err)
				}
			}
			evs, err := s.ReadStream(ctx, a, nil)
			require.NoError(t, err)
			require.Len(t, evs, 4)
		})
	}
}

// TestHotStreamAnyVersion appends to one stream from many goroutines with
// AnyVersion, from two stores, with group commit off (a transaction per
// append) and on: every append lands. Transactions that take their ids
// before they wait for the stream's lock are overtaken by later ones and
// run again; the retry takes the lock before its id, so it is never
// overtaken again.
func TestHotStreamAnyVersion(t *testing.T) {
	t.Parallel()
	for _, disabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("groupCommitDisabled=%v", disabled), func(t *testing.T) {
			t.Parallel()
			const writers, appends = 48, 10
			ctx := context.Background()
			cfg := &meowmx.Config{GroupCommit: meowmx.GroupCommitConfig{Disabled: disabled}}
			s := newStore(t, cfg)
			d := s.Driver().(*meowmxpgx.Driver)
			other, err := meowmx.NewStore(d, cfg)
			require.NoError(t, err)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range appends {
						_, err := []*meowmx.Store[pgx.Tx]{s, other}[w%2].Append(ctx, cat("hot"), meowmx.AnyVersion, event(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i), uuid.Nil))
						if err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			evs, err := s.ReadStream(ctx, "hot", nil)
			require.NoError(t, err)
			require.Len(t, evs, writers*appends)
			for i := 1; i < len(evs); i++ {
				require.Equal(t, -1, evs[i-1].Position.Compare(evs[i].Position), "version %d sorts after version %d in the global order", i, i-1)
			}
		})
	}
}

// TestGroupCommitMixedStress runs appends of every kind of expected
// version, with and without UUIDs, from two grouped stores (two processes'
// worth of batches) on a few hot streams. Every append either lands whole
// or fails with a concurrency error, and each stream ends with exactly the
// events of the appends that landed, in version order and global order.
func TestGroupCommitMixedStress(t *testing.T) {
	t.Parallel()
	const writers, appends, streams = 32, 30, 4
	ctx := context.Background()
	s := newStore(t, &meowmx.Config{GroupCommit: meowmx.GroupCommitConfig{MaxBatch: 16}})
	other, err := meowmx.NewStore(s.Driver(), &meowmx.Config{GroupCommit: meowmx.GroupCommitConfig{MaxBatch: 16}})
	require.NoError(t, err)
	var mu sync.Mutex
	landed := map[string]int{} // stream: events written
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			store := []*meowmx.Store[pgx.Tx]{s, other}[w%2]
			for i := range appends {
				id := fmt.Sprintf("hot-%d", (w+i)%streams)
				var expected meowmx.ExpectedVersion
				switch (w + 3*i) % 4 {
				case 0:
					expected = meowmx.AnyVersion
				case 1:
					expected = meowmx.StreamExists
				case 2:
					expected = meowmx.NoStream
				default:
					st, err := store.Stream(ctx, id)
					if errors.Is(err, meowmx.ErrStreamNotFound) {
						expected = meowmx.NoStream
					} else if err != nil {
						t.Error(err)
						return
					} else {
						expected = meowmx.Exact(st.Version)
					}
				}
				evs := []meowmx.EventData{event(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i), uuid.Nil)}
				if i%3 == 0 {
					evs = []meowmx.EventData{event(`1`, uuid.New()), event(`2`, uuid.New())}
				}
				_, err := store.Append(ctx, cat(id), expected, evs...)
				switch {
				case err == nil:
					mu.Lock()
					landed[id] += len(evs)
					mu.Unlock()
				case errors.Is(err, meowmx.ErrConcurrency):
				default:
					t.Errorf("append %d events, expected version %v: %v", len(evs), expected, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for id, n := range landed {
		evs, err := s.ReadStream(ctx, id, nil)
		require.NoError(t, err)
		require.Len(t, evs, n, id)
		for v, e := range evs {
			require.Equal(t, int64(v), e.Version, id)
			if v > 0 {
				require.Equal(t, -1, evs[v-1].Position.Compare(e.Position), "%s: version %d sorts after version %d", id, v, v-1)
			}
		}
	}
}
