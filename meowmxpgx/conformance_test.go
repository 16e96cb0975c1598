package meowmxpgx_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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
	for _, v := range []struct {
		name string
		gc   meowmx.GroupCommitConfig
		// perAppend: the driver's fallback, one statement per append.
		perAppend bool
	}{
		{name: "GroupCommit"},
		{name: "GroupCommitPerStatement", perAppend: true},
		{name: "GroupCommitWindow", gc: meowmx.GroupCommitConfig{Window: 500 * time.Microsecond, MaxBatch: 8}},
		{name: "GroupCommitDisabled", gc: meowmx.GroupCommitConfig{Disabled: true}},
	} {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			open := func(t *testing.T, pool *pgxpool.Pool, schema string, cfg *meowmx.Config) *meowmx.Store[pgx.Tx] {
				d, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
				require.NoError(t, err)
				meowmxpgx.SetPerAppend(d, v.perAppend)
				c := meowmx.Config{}
				if cfg != nil {
					c = *cfg
				}
				c.GroupCommit = v.gc
				store, err := meowmx.NewStore(d, &c)
				require.NoError(t, err)
				return store
			}
			storetest.Run(t, storetest.Backend[pgx.Tx]{
				NewStore: func(t *testing.T, cfg *meowmx.Config) *meowmx.Store[pgx.Tx] {
					pool, schema := dbtest.Schema(t)
					store := open(t, pool, schema, cfg)
					_, err := store.Migrate(context.Background(), nil)
					require.NoError(t, err)
					return store
				},
				Reopen: func(t *testing.T, s *meowmx.Store[pgx.Tx]) *meowmx.Store[pgx.Tx] {
					d := s.Driver().(*meowmxpgx.Driver)
					return open(t, d.Pool(), d.Schema(), nil)
				},
				InsertEvent: func(t *testing.T, s *meowmx.Store[pgx.Tx], stream meowmx.StreamID) {
					d := s.Driver().(*meowmxpgx.Driver)
					q := pgx.Identifier{d.Schema()}.Sanitize()
					_, err := d.Pool().Exec(context.Background(), `WITH a AS (INSERT INTO `+q+`.es_aggregates (id, version, aggregate_type) VALUES ($1, 0, $2))
						INSERT INTO `+q+`.es_events (transaction_id, aggregate_id, version, event_type, json_data)
						VALUES (pg_current_xact_id(), $1, 0, 'Plain', '{}')`, stream.ID, stream.Type)
					require.NoError(t, err)
				},
				NewUnmigrated: func(t *testing.T) *meowmx.Store[pgx.Tx] {
					pool, schema := dbtest.Schema(t)
					return open(t, pool, schema, nil)
				},
			})
		})
	}
}
