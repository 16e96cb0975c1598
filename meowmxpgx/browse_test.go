package meowmxpgx_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
)

// TestBrowseIDTypes: streams of a category by prefix and page on UUID and
// CHAR(n) id columns too (migration 009 builds its index for each), in
// byte order whatever the database's collation.
func TestBrowseIDTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		idType string
		ids    []string // in order
		prefix string
		want   []string
	}{
		{"TEXT", []string{"A", "a", "ab", "b"}, "a", []string{"a", "ab"}},
		{"CHAR(8)", []string{"A", "a", "ab", "b"}, "a", []string{"a", "ab"}},
		{"UUID", []string{"0a000000-0000-0000-0000-000000000000", "0abc0000-0000-0000-0000-000000000000",
			"ab000000-0000-0000-0000-000000000000", "ff000000-0000-0000-0000-000000000000"}, "0a",
			[]string{"0a000000-0000-0000-0000-000000000000", "0abc0000-0000-0000-0000-000000000000"}},
	} {
		t.Run(tc.idType, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool, schema := dbtest.Schema(t)
			s := storeOn(t, pool, schema, nil, nil)
			_, err := s.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: tc.idType})
			require.NoError(t, err)
			for i := len(tc.ids) - 1; i >= 0; i-- {
				_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: tc.ids[i]}, meowmx.NoStream,
					meowmx.EventData{Type: "Born", Data: json.RawMessage(`{}`)})
				require.NoError(t, err)
			}
			ids := func(o meowmx.StreamsOpts) (out []string) {
				o.Type = "cat"
				got, err := s.Streams(ctx, &o)
				require.NoError(t, err)
				for _, st := range got {
					out = append(out, st.StreamID.ID)
				}
				return out
			}
			require.Equal(t, tc.ids, ids(meowmx.StreamsOpts{}))
			require.Equal(t, tc.ids[2:], ids(meowmx.StreamsOpts{After: tc.ids[1]}))
			require.Equal(t, tc.want, ids(meowmx.StreamsOpts{Prefix: tc.prefix}))
			require.Equal(t, tc.want[1:], ids(meowmx.StreamsOpts{Prefix: tc.prefix, After: tc.want[0]}))
			cats, err := s.Categories(ctx, nil)
			require.NoError(t, err)
			require.Equal(t, int64(len(tc.ids)), cats[0].Streams)

			var n int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'idx_es_aggregates_type_id'`, schema).Scan(&n))
			require.Equal(t, 1, n)
		})
	}
}
