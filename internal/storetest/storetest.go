// Package storetest is the conformance suite of meowmx: the same tests,
// run against every backend. A backend's test file calls Run with a
// Backend that opens an isolated, migrated store.
package storetest

import (
	"context"
	"testing"

	"github.com/meowmx/meowmx"
)

// Backend opens stores on one database kind.
type Backend[TTx any] struct {
	// NewStore returns a store on a fresh, isolated and migrated database.
	// cfg may be nil.
	NewStore func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[TTx]
	// Reopen returns a second store on the same database as s, as another
	// process would open it.
	Reopen func(t *testing.T, s *meowmx.Store[TTx]) *meowmx.Store[TTx]
	// NewUnmigrated, when set, returns a store on a fresh, isolated
	// database without the tables.
	NewUnmigrated func(t *testing.T) *meowmx.Store[TTx]
	// InsertEvent, when set, appends one event to a new stream of s's
	// database with plain SQL, as a writer that is not meowmx would: no
	// notification.
	InsertEvent func(t *testing.T, s *meowmx.Store[TTx], stream meowmx.StreamID)
	// SharedFile is set when the stores of Reopen share one database
	// file (SQLite): their writes queue on the file's lock, with back-off,
	// and a loaded machine (-race, other tests) delays them by seconds.
	// GroupShare then checks what its members handled, not how fast they
	// rebalance.
	SharedFile bool
}

// Run runs the whole suite.
func Run[TTx any](t *testing.T, b Backend[TTx]) {
	t.Run("Append", func(t *testing.T) { t.Parallel(); testAppend(t, b) })
	t.Run("ExpectedVersion", func(t *testing.T) { t.Parallel(); testExpectedVersion(t, b) })
	t.Run("BadInput", func(t *testing.T) { t.Parallel(); testBadInput(t, b) })
	t.Run("NameLimit", func(t *testing.T) { t.Parallel(); testNameLimit(t, b) })
	t.Run("Import", func(t *testing.T) { t.Parallel(); testImport(t, b) })
	t.Run("ImportBatches", func(t *testing.T) { t.Parallel(); testImportBatches(t, b) })
	t.Run("Idempotency", func(t *testing.T) { t.Parallel(); testIdempotency(t, b) })
	t.Run("AppendTx", func(t *testing.T) { t.Parallel(); testAppendTx(t, b) })
	t.Run("Race", func(t *testing.T) { t.Parallel(); testRace(t, b) })
	t.Run("ReadStream", func(t *testing.T) { t.Parallel(); testReadStream(t, b) })
	t.Run("ReadAll", func(t *testing.T) { t.Parallel(); testReadAll(t, b) })
	t.Run("Horizon", func(t *testing.T) { t.Parallel(); testHorizon(t, b) })
	t.Run("StreamOrder", func(t *testing.T) { t.Parallel(); testStreamOrder(t, b) })
	t.Run("Aggregate", func(t *testing.T) { t.Parallel(); testAggregate(t, b) })
	t.Run("AggregateUpdate", func(t *testing.T) { t.Parallel(); testAggregateUpdate(t, b) })
	t.Run("AggregateUnknownEvents", func(t *testing.T) { t.Parallel(); testAggregateUnknownEvents(t, b) })
	t.Run("AggregateUpcast", func(t *testing.T) { t.Parallel(); testAggregateUpcast(t, b) })
	t.Run("AggregateLong", func(t *testing.T) { t.Parallel(); testAggregateLong(t, b) })
	t.Run("AggregateSnapshots", func(t *testing.T) { t.Parallel(); testAggregateSnapshots(t, b) })
	t.Run("NoHorizon", func(t *testing.T) { t.Parallel(); testNoHorizon(t, b) })
	t.Run("Tail", func(t *testing.T) { t.Parallel(); testTail(t, b) })
	t.Run("BigAppend", func(t *testing.T) { t.Parallel(); testBigAppend(t, b) })
	t.Run("Payloads", func(t *testing.T) { t.Parallel(); testPayloads(t, b) })
	t.Run("Migrate", func(t *testing.T) { t.Parallel(); testMigrate(t, b) })
	t.Run("Canceled", func(t *testing.T) { t.Parallel(); testCanceled(t, b) })
	t.Run("Delivery", func(t *testing.T) { t.Parallel(); testDelivery(t, b) })
	t.Run("Lag", func(t *testing.T) { t.Parallel(); testLag(t, b) })
	t.Run("Browse", func(t *testing.T) { t.Parallel(); testBrowse(t, b) })
	t.Run("SubscriptionOneOwner", func(t *testing.T) { t.Parallel(); testSubscriptionOneOwner(t, b) })
	runSubscriptions(t, b)
	runGroups(t, b)
}

// begin starts a transaction on s's database, with functions to commit and
// roll it back; it is rolled back at the end of the test if neither ran.
func begin[TTx any](t *testing.T, s *meowmx.Store[TTx]) (TTx, func() error, func() error) {
	t.Helper()
	ctx := context.Background()
	etx, err := s.Driver().Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			_ = etx.Rollback(context.WithoutCancel(ctx))
		}
	})
	return s.Driver().UnwrapTx(etx),
		func() error { done = true; return etx.Commit(ctx) },
		func() error { done = true; return etx.Rollback(ctx) }
}
