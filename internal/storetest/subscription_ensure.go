package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxdriver"
)

// testSubscriptionEnsure checks the driver's SubscriptionEnsure, which a
// worker runs when it takes ownership: it creates the subscription at its
// start position, or stores the new filter of an existing one without
// moving its checkpoint, and returns the row as stored.
func testSubscriptionEnsure[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	ex := s.Driver().Executor()
	res, err := s.Append(ctx, cat("ensure"), meowmx.NoStream, ev("One", `1`), ev("Two", `2`))
	require.NoError(t, err)
	settle(t, s)
	one := res.Events[0].Position
	ensure := func(p *meowmxdriver.SubscriptionEnsureParams) *meowmx.SubscriptionInfo {
		t.Helper()
		row, err := ex.SubscriptionEnsure(ctx, p)
		require.NoError(t, err)
		stored, err := ex.SubscriptionGet(ctx, &meowmxdriver.SubscriptionGetParams{Name: p.Name})
		require.NoError(t, err)
		require.Equal(t, stored, row, "it returns the row as stored")
		return row
	}

	row := ensure(&meowmxdriver.SubscriptionEnsureParams{Name: "ensure", At: one, AggregateTypes: []string{"cat"}})
	require.Equal(t, &meowmx.SubscriptionInfo{Name: "ensure", Position: one, AggregateTypes: []string{"cat"}}, row)

	row = ensure(&meowmxdriver.SubscriptionEnsureParams{Name: "ensure", AtHead: true, EventTypes: []string{"Two"}})
	require.Equal(t, &meowmx.SubscriptionInfo{Name: "ensure", Position: one, EventTypes: []string{"Two"}}, row,
		"an existing subscription takes the filter and keeps its checkpoint")

	row = ensure(&meowmxdriver.SubscriptionEnsureParams{Name: "ensure", At: res.Events[1].Position})
	require.Equal(t, &meowmx.SubscriptionInfo{Name: "ensure", Position: one}, row, "an empty filter is no filter")

	head := ensure(&meowmxdriver.SubscriptionEnsureParams{Name: "ensure-head", AtHead: true}).Position
	require.GreaterOrEqual(t, head.Compare(res.Events[1].Position), 0, "a new subscription at the head starts after the last event")
}
