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

// backend opens each store on a new database: a file in the test's
// temporary directory, or an in-memory database.
func backend(memory bool) storetest.Backend[*sql.Tx] {
	return storetest.Backend[*sql.Tx]{
		NewStore: func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[*sql.Tx] {
			t.Helper()
			path := meowmxsqlite.Memory
			if !memory {
				path = filepath.Join(t.TempDir(), "events.db")
			}
			driver, err := meowmxsqlite.Open(context.Background(), path, nil)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, driver.Close()) })
			store, err := meowmx.NewStore(driver, cfg)
			require.NoError(t, err)
			_, err = store.Migrate(context.Background(), nil)
			require.NoError(t, err)
			return store
		},
		Reopen: func(t *testing.T, s *meowmx.Store[*sql.Tx]) *meowmx.Store[*sql.Tx] {
			t.Helper()
			d := s.Driver().(*meowmxsqlite.Driver)
			if d.Path() == meowmxsqlite.Memory {
				// An in-memory database has no name to open again: a
				// second driver on the same pools stands in.
				driver, err := meowmxsqlite.New(d.DB(), nil)
				require.NoError(t, err)
				store, err := meowmx.NewStore(driver, nil)
				require.NoError(t, err)
				return store
			}
			driver, err := meowmxsqlite.Open(context.Background(), d.Path(), nil)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, driver.Close()) })
			store, err := meowmx.NewStore(driver, nil)
			require.NoError(t, err)
			return store
		},
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, backend(false))
}

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	storetest.Run(t, backend(true))
}
