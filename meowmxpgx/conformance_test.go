package meowmxpgx_test

import (
	"context"
	"testing"
	"time"

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
	for name, gc := range map[string]meowmx.GroupCommitConfig{
		"GroupCommit":             {},
		"GroupCommitPerStatement": {}, // the driver's fallback: one statement per append
		"GroupCommitWindow":       {Window: 500 * time.Microsecond, MaxBatch: 8},
		"GroupCommitDisabled":     {Disabled: true},
	} {
		perAppend := name == "GroupCommitPerStatement"
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			withGC := func(cfg *meowmx.Config) *meowmx.Config {
				out := meowmx.Config{}
				if cfg != nil {
					out = *cfg
				}
				out.GroupCommit = gc
				return &out
			}
			storetest.Run(t, storetest.Backend[pgx.Tx]{
				NewStore: func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[pgx.Tx] {
					s := newStore(t, withGC(cfg))
					meowmxpgx.SetPerAppend(s.Driver().(*meowmxpgx.Driver), perAppend)
					return s
				},
				Reopen: func(t *testing.T, s *meowmx.Store[pgx.Tx]) *meowmx.Store[pgx.Tx] {
					d := s.Driver().(*meowmxpgx.Driver)
					driver, err := meowmxpgx.New(d.Pool(), &meowmxpgx.Config{Schema: d.Schema()})
					require.NoError(t, err)
					meowmxpgx.SetPerAppend(driver, perAppend)
					store, err := meowmx.NewStore(driver, withGC(nil))
					require.NoError(t, err)
					return store
				},
			})
		})
	}
}
