// Package meowmxdrivertest is the contract suite of the drivers of this
// module (meowmxpgx, meowmxsqlite): it calls a driver's executors directly,
// below package meowmx, and checks what package meowmxdriver promises of
// them. The store-level suite, which runs the same drivers through
// meowmx.Store, is internal/storetest.
//
// A driver's test file calls Exercise with a Backend that opens a fresh,
// migrated database per test.
//
// Like package meowmxdriver, it is for this module's drivers only, and its
// API is not stable: it changes whenever meowmxdriver does.
package meowmxdrivertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// Backend opens drivers on one kind of database.
type Backend[TTx any] struct {
	// NewDriver returns a driver on a fresh, isolated database whose tables
	// exist (Driver.Migrate has run). Its connections may be shared with
	// other tests.
	NewDriver func(t *testing.T) meowmxdriver.Driver[TTx]
	// NewCountingDriver returns a driver like NewDriver's, on connections
	// of its own, and a Counter that records every statement sent on them.
	NewCountingDriver func(t *testing.T) (meowmxdriver.Driver[TTx], *Counter)
	// WriteStray writes, outside d and without moving es_aggregates, an
	// event of type "Stray" at the given version of the stream aggregateID
	// (which exists): what a client that bypasses the append guard leaves
	// behind. An append that would write that version then fails on a
	// unique violation.
	WriteStray func(t *testing.T, d meowmxdriver.Driver[TTx], aggregateID string, version int64)
	// Overtake is needed for drivers whose Capabilities have a Horizon.
	// It holds the stream aggregateID (which exists) so that the next
	// append to it waits, and returns release. Release waits until an
	// append waits for the stream, makes a transaction id newer than the
	// waiting append's the stream's last writer's, and lets the append go
	// on: the append's transaction is then overtaken, as when a newer
	// transaction locks the stream between an older one taking its id and
	// locking it.
	Overtake func(t *testing.T, d meowmxdriver.Driver[TTx], aggregateID string) (release func())
	// Statements are how the driver sends the appends of the statement
	// counts.
	Statements Statements
	// KnownBugs names the tests of the suite that the driver fails, each
	// with the bug: they are skipped, with "BUG: " and the reason, until
	// the driver is fixed.
	KnownBugs map[string]string
}

// Statements tells how a driver sends the appends that the suite counts,
// through Executor().EventAppend on the pool unless said otherwise, once
// the driver has looked up what it caches (the tables' id type, prepared
// statements).
type Statements struct {
	// Refused is an append refused for its expected version, to a stream
	// that exists.
	Refused Sends
	// Conflict is an append without event UUIDs that a unique violation
	// stops (see Backend.WriteStray). It fails with ErrDuplicate.
	Conflict Sends
	// ConflictUUIDs is Conflict with event UUIDs, none of them stored. It
	// fails with ErrDuplicate too.
	ConflictUUIDs Sends
	// ReorderedTx, for drivers with a horizon, is an append in a caller's
	// transaction that took its id before a newer one wrote the stream. It
	// fails with ErrReordered.
	ReorderedTx Sends
	// Reordered, for drivers with a horizon, is an append whose
	// transaction was overtaken (see Backend.Overtake), which the driver
	// runs again and which then succeeds.
	Reordered Sends
}

// Sends tells how statements reached the database, in order: each element
// is a send, and says how many statements it carried (1 for a statement
// sent alone, more for a batch, such as a pgx.Batch).
type Sends []int

// Statements returns how many statements were sent in all.
func (s Sends) Statements() int {
	n := 0
	for _, k := range s {
		n += k
	}
	return n
}

// Counter records the statements that reach a database. Drivers' tests
// feed it from a hook in the database client: a pgx tracer, a wrapped
// database/sql driver. It is safe for concurrent use.
type Counter struct {
	mu       sync.Mutex
	sends    [][]string
	prepares []string
}

// Statement records a statement sent alone. BEGIN, COMMIT and ROLLBACK
// are statements too, whether the client sends them as SQL or not.
func (c *Counter) Statement(sql string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sends = append(c.sends, []string{sql})
}

// Batch records statements sent together, in one batch.
func (c *Counter) Batch(sqls []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sends = append(c.sends, append([]string(nil), sqls...))
}

// Prepare records a statement prepared without being run. Prepares are
// not statements: they are listed apart, by Prepares.
func (c *Counter) Prepare(sql string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepares = append(c.prepares, sql)
}

// Reset forgets what was recorded.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sends, c.prepares = nil, nil
}

// Sends returns how the statements recorded since the last Reset were
// sent.
func (c *Counter) Sends() Sends {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Sends, len(c.sends))
	for i, s := range c.sends {
		out[i] = len(s)
	}
	return out
}

// Statements returns the statements recorded since the last Reset, in
// order.
func (c *Counter) Statements() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.sends {
		out = append(out, s...)
	}
	return out
}

// Prepares returns the statements prepared since the last Reset.
func (c *Counter) Prepares() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.prepares...)
}

// String lists the sends recorded since the last Reset, one statement a
// line, shortened: for failure messages.
func (c *Counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for i, s := range c.sends {
		for j, sql := range s {
			mark := "    "
			if len(s) > 1 {
				mark = fmt.Sprintf("  %d.", j+1)
			}
			fmt.Fprintf(&b, "send %d%s %s\n", i+1, mark, shorten(sql))
		}
	}
	for _, sql := range c.prepares {
		fmt.Fprintf(&b, "prepared: %s\n", shorten(sql))
	}
	return b.String()
}

// shorten returns sql on one line, cut to 120 bytes.
func shorten(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// Exercise runs the whole suite against b, each test in parallel on a
// driver of its own.
func Exercise[TTx any](t *testing.T, b Backend[TTx]) {
	t.Helper()
	if b.NewDriver == nil || b.NewCountingDriver == nil || b.WriteStray == nil {
		t.Fatal("meowmxdrivertest: Backend needs NewDriver, NewCountingDriver and WriteStray")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Backend[TTx])
	}{
		// events.go
		{"AppendExpectedVersion", testAppendExpectedVersion[TTx]},
		{"AppendEvents", testAppendEvents[TTx]},
		{"AppendLarge", testAppendLarge[TTx]},
		{"AppendUUIDs", testAppendUUIDs[TTx]},
		{"AppendDuplicateInTx", testAppendDuplicateInTx[TTx]},
		{"AppendInTx", testAppendInTx[TTx]},
		{"AppendReorderedInTx", testAppendReorderedInTx[TTx]},
		// reads.go
		{"EventReadAll", testEventReadAll[TTx]},
		{"StreamRead", testStreamRead[TTx]},
		{"StreamGet", testStreamGet[TTx]},
		{"EventGet", testEventGet[TTx]},
		// subscriptions.go
		{"SubscriptionCreateGet", testSubscriptionCreateGet[TTx]},
		{"SubscriptionCreateAtHead", testSubscriptionCreateAtHead[TTx]},
		{"SubscriptionCreateAtHeadNotAt", testSubscriptionCreateAtHeadNotAt[TTx]},
		{"SubscriptionList", testSubscriptionList[TTx]},
		{"SubscriptionSet", testSubscriptionSet[TTx]},
		{"SubscriptionDelete", testSubscriptionDelete[TTx]},
		{"SubscriptionHead", testSubscriptionHead[TTx]},
		{"SubscriptionCommit", testSubscriptionCommit[TTx]},
		// parked.go
		{"Parked", testParked[TTx]},
		{"ParkedSubscriptions", testParkedSubscriptions[TTx]},
		// snapshots.go
		{"Snapshots", testSnapshots[TTx]},
		// capabilities.go
		{"BatchOfOne", testBatchOfOne[TTx]},
		{"BatchOfSeveral", testBatchOfSeveral[TTx]},
		{"BatchItemError", testBatchItemError[TTx]},
		{"Listener", testListener[TTx]},
		{"Horizon", testHorizon[TTx]},
		{"HorizonHolders", testHorizonHolders[TTx]},
		// statements.go
		{"StatementsRefused", testStatementsRefused[TTx]},
		{"StatementsConflict", testStatementsConflict[TTx]},
		{"StatementsConflictUUIDs", testStatementsConflictUUIDs[TTx]},
		{"StatementsReorderedTx", testStatementsReorderedTx[TTx]},
		{"StatementsReordered", testStatementsReordered[TTx]},
	}
	known := make(map[string]bool, len(tests))
	for _, tc := range tests {
		known[tc.name] = true
	}
	for name := range b.KnownBugs {
		if !known[name] {
			t.Errorf("meowmxdrivertest: Backend.KnownBugs names %q, which is no test of the suite", name)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if bug, ok := b.KnownBugs[tc.name]; ok {
				t.Skip("BUG: " + bug)
			}
			tc.fn(t, b)
		})
	}
}

// begin starts a transaction on d, rolled back when the test ends unless
// it ended before (the error of that rollback is ignored).
func begin[TTx any](t *testing.T, d meowmxdriver.Driver[TTx]) meowmxdriver.ExecutorTx {
	t.Helper()
	ctx := context.Background()
	tx, err := d.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	return tx
}
