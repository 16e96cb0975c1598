package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxpgx"
)

type counter struct{ N int }

func (c *counter) Apply(any) error { c.N++; return nil }

// TestDeliveryByNotify: with the probe off, only NOTIFY wakes a subscriber
// in another process. Store.Close sends the notification an append left
// pending (as a process that exits right after its append would), and the
// aggregate helper announces what it saves.
func TestDeliveryByNotify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noProbe := &meowmxpgx.Config{ProbeInterval: -1}
	s, pool, schema := newSchemaStore(t, noProbe, nil)
	stop := run(t, s, &meowmx.SubscriptionConfig[pgx.Tx]{Name: "notified", Handler: seenHandler(schema, 0),
		PollInterval: time.Hour, MaxPollInterval: time.Hour})
	defer func() { require.NoError(t, stop()) }()
	waitFor(t, s, "notified")
	seen := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "seen"}.Sanitize()).Scan(&n))
		return n
	}
	data := meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{}`)}

	// A NOTIFY per hour at most: the first append is announced at once,
	// the second waits for the interval, or for Close.
	w := storeOn(t, pool, schema, noProbe, &meowmx.Config{NotifyInterval: time.Hour})
	_, err := w.Append(ctx, meowmx.StreamID{Type: "cat", ID: "first"}, meowmx.NoStream, data)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return seen() == 1 }, 30*time.Second, time.Millisecond)
	_, err = w.Append(ctx, meowmx.StreamID{Type: "cat", ID: "pending"}, meowmx.NoStream, data)
	require.NoError(t, err)
	require.NoError(t, w.Close(ctx))
	require.Eventually(t, func() bool { return seen() == 2 }, 30*time.Second, time.Millisecond,
		"Close sends the pending notification")

	w2 := storeOn(t, pool, schema, noProbe, nil)
	reg := meowmx.NewRegistry()
	require.NoError(t, meowmx.RegisterEvent[struct{}](reg, "Counted"))
	repo, err := meowmx.NewRepository[counter](w2, "counter", reg, nil)
	require.NoError(t, err)
	for i := range 2 {
		_, err = repo.Update(ctx, fmt.Sprint("c", i), func(a *meowmx.Aggregate[counter]) error { return a.Emit(struct{}{}) })
		require.NoError(t, err)
		require.Eventually(t, func() bool { return seen() == 3+i }, 30*time.Second, time.Millisecond,
			"Repository.Update announces what it saves")
	}
	require.NoError(t, w2.Close(ctx))
	checkSeen(t, pool, schema, 4)
}
