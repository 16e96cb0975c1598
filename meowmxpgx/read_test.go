package meowmxpgx_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

// TestIterAllAwaitOlder: an event committed behind a transaction that is
// still open is below no horizon. IterAll without AwaitOlder ends without
// it; with AwaitOlder it waits for the older transaction and returns it,
// or ends at the horizon when the wait runs out.
func TestIterAllAwaitOlder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, _ := newSchemaStore(t, nil, nil)
	older, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = older.Rollback(ctx) }()
	_, err = older.Exec(ctx, `SELECT pg_current_xact_id()`) // holds the horizon
	require.NoError(t, err)
	_, err = s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "felix"}, meowmx.NoStream,
		meowmx.EventData{Type: "Adopted", Data: []byte(`{}`)})
	require.NoError(t, err)

	count := func(opts *meowmx.ReadAllOpts) int {
		n := 0
		for _, err := range s.IterAll(ctx, opts) {
			require.NoError(t, err)
			n++
		}
		return n
	}
	require.Equal(t, 0, count(nil), "behind the open transaction")
	began := time.Now()
	require.Equal(t, 0, count(&meowmx.ReadAllOpts{AwaitOlder: 200 * time.Millisecond}), "the wait runs out")
	require.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "it waited")

	done := make(chan int)
	go func() { done <- count(&meowmx.ReadAllOpts{AwaitOlder: time.Minute}) }()
	select {
	case n := <-done:
		t.Fatalf("IterAll ended with %d events while the older transaction was open", n)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, older.Commit(ctx))
	require.Equal(t, 1, <-done, "every event committed before the read")
}
