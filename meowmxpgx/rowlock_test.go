package meowmxpgx_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxpgx"
	"github.com/meowmx/meowmx/meowmxtype"
)

// TestHorizonRowLockEnds: a row lock's transaction that ends while a
// reader's statement runs (in the statement's snapshot, gone from
// pg_stat_activity when the statement reads it) does not hold that
// statement's horizon back below one read before it. It did: the horizon
// went back to the lock's id, and a read that stops at the horizon
// (IterAll) stopped short of events committed after the lock began, which
// an earlier read had returned (storetest's SubscriptionStandby once
// missed the standby's 40 events in its ledger).
//
// The reader's statement waits on an advisory lock between its snapshot
// and its horizon, while the driver rolls its row lock over.
func TestHorizonRowLockEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := dbtest.Schema(t)
	s := storeOn(t, pool, schema, nil, nil)
	_, err := s.Migrate(ctx, nil)
	require.NoError(t, err)
	ex := s.Driver().Executor()
	_, err = ex.SubscriptionEnsure(ctx, &meowmxdriver.SubscriptionEnsureParams{Name: "h"})
	require.NoError(t, err)
	owner := meowmxtype.SubscriptionOwner{ID: "w", Host: "test", PID: 1}
	r, err := ex.SubscriptionLease(ctx, &meowmxdriver.SubscriptionLeaseParams{Name: "h", Owner: owner, TTL: 10 * time.Second})
	require.NoError(t, err)
	require.True(t, r.Held)
	t.Cleanup(func() {
		_ = ex.SubscriptionRelease(ctx, &meowmxdriver.SubscriptionReleaseParams{Name: "h", Owner: owner.ID})
	})
	table := pgx.Identifier{schema, "es_event_subscriptions"}.Sanitize()
	key := rand.Int64N(1<<31) + 1

	for attempt := range 50 {
		// The transaction id of this driver's row lock (its session holds
		// the table's ROW SHARE lock).
		var lock32 int64
		err := pool.QueryRow(ctx, `SELECT a.backend_xid::text::bigint
			FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'relation' AND l.relation = $1::regclass AND l.granted
			  AND a.application_name = $2 AND a.backend_xid IS NOT NULL
			ORDER BY a.backend_start DESC LIMIT 1`, table, meowmxpgx.RowLockApplication).Scan(&lock32)
		require.NoError(t, err)
		// A later id completes: the lock's id is in later snapshots.
		_, err = pool.Exec(ctx, `SELECT pg_current_xact_id()`)
		require.NoError(t, err)
		before, err := ex.HorizonGet(ctx)
		require.NoError(t, err)

		gate, err := pool.Begin(ctx)
		require.NoError(t, err)
		_, err = gate.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, key)
		require.NoError(t, err)
		type result struct {
			h   int64
			xip []int64
			err error
		}
		done := make(chan result, 1)
		go func() {
			var res result
			var waited bool
			res.err = pool.QueryRow(ctx, `SELECT waited IS NULL, h, xip FROM (
				SELECT pg_advisory_xact_lock_shared($1) AS waited, (`+meowmxpgx.HorizonSQL+`)::text::bigint AS h,
					ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(pg_current_snapshot()) x) AS xip
				OFFSET 0) s`, key).Scan(&waited, &res.h, &res.xip)
			done <- res
		}()
		waits := func(q string, args ...any) {
			require.Eventually(t, func() bool {
				var ok bool
				require.NoError(t, pool.QueryRow(ctx, q, args...).Scan(&ok))
				return ok
			}, 10*time.Second, time.Millisecond)
		}
		// The reader has its snapshot, and waits for the gate.
		waits(`SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND classid = 0 AND objid::text::bigint = $1 AND objsubid = 1)`, key)
		// The driver rolls the lock over: the lock's transaction ends.
		waits(`SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_xid::text::bigint = $1)`, lock32)
		require.NoError(t, gate.Rollback(ctx))
		res := <-done
		require.NoError(t, res.err)

		i := slices.IndexFunc(res.xip, func(x int64) bool { return x%(1<<32) == lock32 })
		if i < 0 {
			t.Logf("attempt %d: the lock's id %d was not in the reader's snapshot; again", attempt, lock32)
			continue
		}
		if slices.Min(res.xip) < res.xip[i] {
			// An older transaction (another test's) holds the horizon
			// below the lock's id either way: this attempt shows nothing.
			t.Logf("attempt %d: an older transaction than the lock's was running; again", attempt)
			continue
		}
		require.NotEqual(t, res.xip[i], res.h, "the horizon is the id of a row lock's transaction that has ended")
		require.GreaterOrEqual(t, uint64(res.h), before.Xmin, "the horizon went back")
		return
	}
	t.Skip("inconclusive: the lock's id was never the oldest of the reader's snapshot (a busy server)")
}
