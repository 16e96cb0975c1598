package meowmxdrivertest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// testSnapshots saves snapshots and finds the latest at or below a
// version.
func testSnapshots[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	d := b.NewDriver(t)
	ex := d.Executor()
	latest := func(ex meowmxdriver.Executor, id string, maxVersion int64) (*meowmxdriver.SnapshotRow, error) {
		return ex.SnapshotGetLatest(ctx, &meowmxdriver.SnapshotGetLatestParams{AggregateID: id, MaxVersion: maxVersion})
	}
	_, err := latest(ex, "a", -1)
	require.ErrorIs(t, err, meowmxdriver.ErrNotFound)

	v3 := &meowmxdriver.SnapshotRow{AggregateID: "a", Version: 3, Data: []byte(`{"n":  3, "kept": "as given"}`),
		AggregateType: "cat", SnapshotVersion: 2, StateShape: "shape-1"}
	v5 := &meowmxdriver.SnapshotRow{AggregateID: "a", Version: 5, Data: []byte(`{"n":5}`),
		AggregateType: "cat", SnapshotVersion: 2, StateShape: "shape-1"}
	other := &meowmxdriver.SnapshotRow{AggregateID: "b", Version: 9, Data: []byte(`[]`), AggregateType: "dog", SnapshotVersion: 0, StateShape: ""}
	for _, s := range []*meowmxdriver.SnapshotRow{v5, v3, other} {
		require.NoError(t, ex.SnapshotSave(ctx, s))
	}
	for _, tc := range []struct {
		max  int64
		want *meowmxdriver.SnapshotRow
	}{{-1, v5}, {100, v5}, {5, v5}, {4, v3}, {3, v3}, {2, nil}, {0, nil}} {
		got, err := latest(ex, "a", tc.max)
		if tc.want == nil {
			require.ErrorIs(t, err, meowmxdriver.ErrNotFound, "at or below %d", tc.max)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "at or below %d", tc.max)
	}
	got, err := latest(ex, "b", -1)
	require.NoError(t, err)
	require.Equal(t, other, got)

	replaced := &meowmxdriver.SnapshotRow{AggregateID: "a", Version: 5, Data: []byte(`{"n":55}`),
		AggregateType: "cat", SnapshotVersion: 3, StateShape: "shape-2"}
	require.NoError(t, ex.SnapshotSave(ctx, replaced))
	got, err = latest(ex, "a", -1)
	require.NoError(t, err)
	require.Equal(t, replaced, got, "a snapshot at the same version is replaced")

	tx := begin(t, d)
	rolledBack := &meowmxdriver.SnapshotRow{AggregateID: "a", Version: 7, Data: []byte(`{}`), AggregateType: "cat", SnapshotVersion: 3, StateShape: "shape-2"}
	require.NoError(t, tx.SnapshotSave(ctx, rolledBack))
	got, err = latest(tx, "a", -1)
	require.NoError(t, err)
	require.Equal(t, rolledBack, got, "a transaction sees its own snapshots")
	require.NoError(t, tx.Rollback(ctx))
	got, err = latest(ex, "a", -1)
	require.NoError(t, err)
	require.Equal(t, replaced, got, "rolled back")
}
