package meowmxsqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/storetest"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// open opens a store on path (a new file in the test's temporary directory
// when path is empty), closed when the test ends.
func open(t *testing.T, path string, cfg *meowmx.Config) *meowmx.Store[*sql.Tx] {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "events.db")
	}
	driver, err := meowmxsqlite.Open(context.Background(), path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, driver.Close()) })
	store, err := meowmx.NewStore(driver, cfg)
	require.NoError(t, err)
	return store
}

// backend opens each store on a new file in the test's temporary
// directory.
func backend() storetest.Backend[*sql.Tx] {
	return storetest.Backend[*sql.Tx]{
		SharedFile: true,
		NewStore: func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[*sql.Tx] {
			t.Helper()
			store := open(t, "", cfg)
			_, err := store.Migrate(context.Background(), nil)
			require.NoError(t, err)
			return store
		},
		Reopen: func(t *testing.T, s *meowmx.Store[*sql.Tx]) *meowmx.Store[*sql.Tx] {
			t.Helper()
			return open(t, s.Driver().(*meowmxsqlite.Driver).Path(), nil)
		},
		InsertEvent:   insertEvent,
		NewUnmigrated: func(t *testing.T) *meowmx.Store[*sql.Tx] { return open(t, "", nil) },
	}
}

// TestConformance runs the store's suite on files; the root package runs
// it on a Memory database.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, backend())
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
