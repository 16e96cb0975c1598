package meowmxpgx_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/meowmx/meowmx/meowmxpgx"
)

// TestPartitionIndex: concurrent builds make one valid index; an index
// left invalid (an interrupted CREATE INDEX CONCURRENTLY) is built again;
// a partition's read walks it.
func TestPartitionIndex(t *testing.T) {
	ctx := context.Background()
	_, pool, schema := newSchemaStore(t, nil, nil)
	fillBacklog(t, pool, schema, 100_000, 10)
	d, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	require.NoError(t, err)
	name := pgx.Identifier{schema, "es_events_partition_8"}.Sanitize()
	valid := func() (bool, bool) {
		var v bool
		err := pool.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, name).Scan(&v)
		if err == pgx.ErrNoRows {
			return false, false
		}
		require.NoError(t, err)
		return true, v
	}

	require.NoError(t, d.PartitionIndex(ctx, 1), "no index without partitions")
	exists, _ := valid()
	require.False(t, exists)

	var g errgroup.Group
	for range 4 {
		g.Go(func() error { return d.PartitionIndex(ctx, 8) })
	}
	require.NoError(t, g.Wait())
	// A build that lost the race returned at once: the winner may still be
	// on it only if it had not returned, and all have.
	exists, ok := valid()
	require.True(t, exists && ok, "one build made a valid index")

	_, err = pool.Exec(ctx, `UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass($1)`, name)
	require.NoError(t, err)
	require.NoError(t, d.PartitionIndex(ctx, 8))
	exists, ok = valid()
	require.True(t, exists && ok, "the invalid index was built again")

	_, err = pool.Exec(ctx, `ANALYZE `+pgx.Identifier{schema, "es_events"}.Sanitize())
	require.NoError(t, err)
	rows, _ := pool.Query(ctx, `EXPLAIN SELECT id FROM `+pgx.Identifier{schema, "es_events"}.Sanitize()+` e
		WHERE (e.partition_hash % 8) = 1 AND (e.transaction_id, e.id) > ('0'::xid8, 0)
		ORDER BY (e.partition_hash % 8), e.transaction_id, e.id LIMIT 1000`)
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, strings.Join(plan, "\n"), "es_events_partition_8", "a partition's read walks the index")
}
