package meowmx_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/storetest"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// TestConformance runs the store's conformance suite here, on SQLite, so
// that the root package's own tests cover the store (the drivers' packages
// run it on their databases too).
func TestConformance(t *testing.T) {
	t.Parallel()
	open := func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[*sql.Tx] {
		t.Helper()
		driver, err := meowmxsqlite.Open(context.Background(), meowmxsqlite.Memory, nil)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, driver.Close()) })
		store, err := meowmx.NewStore(driver, cfg)
		require.NoError(t, err)
		return store
	}
	storetest.Run(t, storetest.Backend[*sql.Tx]{
		NewStore: func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[*sql.Tx] {
			store := open(t, cfg)
			_, err := store.Migrate(context.Background(), nil)
			require.NoError(t, err)
			return store
		},
		Reopen: func(t *testing.T, s *meowmx.Store[*sql.Tx]) *meowmx.Store[*sql.Tx] {
			// A Memory database has no name to open again: a second driver
			// on the same pool stands in for another process.
			driver, err := meowmxsqlite.New(s.Driver().(*meowmxsqlite.Driver).DB(), nil)
			require.NoError(t, err)
			store, err := meowmx.NewStore(driver, nil)
			require.NoError(t, err)
			return store
		},
		InsertEvent:   insertEvent,
		NewUnmigrated: func(t *testing.T) *meowmx.Store[*sql.Tx] { return open(t, nil) },
	})
}

// insertEvent appends an event with plain SQL, as another client would.
func insertEvent(t *testing.T, s *meowmx.Store[*sql.Tx], stream meowmx.StreamID) {
	t.Helper()
	db := s.Driver().(*meowmxsqlite.Driver).DB()
	_, err := db.ExecContext(context.Background(), `INSERT INTO es_aggregates (id, version, aggregate_type) VALUES (?1, 0, ?2)`, stream.ID, stream.Type)
	require.NoError(t, err)
	_, err = db.ExecContext(context.Background(), `INSERT INTO es_events (aggregate_id, version, event_type, json_data) VALUES (?1, 0, 'Plain', '{}')`, stream.ID)
	require.NoError(t, err)
}
