package meowmxpgx_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/internal/storetest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

func newStore(t *testing.T, cfg *meowmx.Config) *meowmx.Store[pgx.Tx] {
	t.Helper()
	pool, schema := dbtest.Schema(t)
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(t, err)
	store, err := meowmx.NewStore(driver, cfg)
	require.NoError(t, err)
	_, err = store.Migrate(context.Background(), nil)
	require.NoError(t, err)
	return store
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Backend[pgx.Tx]{
		NewStore: newStore,
		Reopen: func(t *testing.T, s *meowmx.Store[pgx.Tx]) *meowmx.Store[pgx.Tx] {
			d := s.Driver().(*meowmxpgx.Driver)
			driver, err := meowmxpgx.New(d.Pool(), &meowmxpgx.Config{Schema: d.Schema()})
			require.NoError(t, err)
			store, err := meowmx.NewStore(driver, nil)
			require.NoError(t, err)
			return store
		},
		NewUnmigrated: func(t *testing.T) *meowmx.Store[pgx.Tx] {
			pool, schema := dbtest.Schema(t)
			driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
			require.NoError(t, err)
			store, err := meowmx.NewStore(driver, nil)
			require.NoError(t, err)
			return store
		},
	})
}
