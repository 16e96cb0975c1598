package meowmxpgx

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxtype"
)

// TestDecodeRaw checks that eventScanner's decoding of raw values gives
// what rows.Scan gives, row by row, for every shape of row: NULL and set
// metadata and UUID, times before 2000 and after, versions near the int32
// bounds, long and empty strings; and that it leaves to Scan what it does
// not read.
func TestDecodeRaw(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	rows, err := pool.Query(ctx, `SELECT * FROM (VALUES
		(1::int8, '1'::xid8, 'a'::text, 'T'::text, 0::int4, 'E'::text, '{}'::json, NULL::json, NULL::uuid, now()),
		(9223372036854775807, '18446744073709551615', repeat('x', 3000), '', 2147483647, 'É', '[1, 2]', '{"m": true}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1999-12-31 23:59:59.999999+00'),
		(3, '3', 'b', 'T', -1, 'E', '"s"', 'null', '00000000-0000-0000-0000-000000000000', '2000-01-01 00:00:00+00'),
		(4, '4', 'c', 'T', 5, 'E', '1', NULL, NULL, '1970-01-01 00:00:00.000001+00'),
		(5, '5', 'd', 'T', 1, 'E', '{}', NULL, NULL, NULL) -- written before the tables were adopted
	) v ORDER BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	var raw, scanned eventScanner
	scanned.raw = -1
	n := 0
	for rows.Next() {
		require.True(t, raw.rawOK(rows), "the columns are those decodeRaw reads")
		raw.raw = 1
		var a, b meowmxtype.RecordedEvent
		require.True(t, raw.decodeRaw(rows, &a), "row %d", n)
		require.NoError(t, scanned.scan(rows, &b), "row %d", n)
		require.True(t, a.RecordedAt.Equal(b.RecordedAt), "row %d: %v, Scan %v", n, a.RecordedAt, b.RecordedAt)
		require.Equal(t, b.RecordedAt.Location(), a.RecordedAt.Location())
		a.RecordedAt = b.RecordedAt
		require.Equal(t, b, a, "row %d", n)
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 5, n)

	// An infinite time is Scan's to refuse.
	rows, err = pool.Query(ctx, `SELECT 1::int8, '1'::xid8, 'a'::text, 'T'::text, 0::int4, 'E'::text,
		'{}'::json, NULL::json, NULL::uuid, 'infinity'::timestamptz`)
	require.NoError(t, err)
	defer rows.Close()
	require.True(t, rows.Next())
	var sc eventScanner
	var ev meowmxtype.RecordedEvent
	require.False(t, sc.rawOK(rows) && sc.decodeRaw(rows, &ev))
	require.Error(t, sc.scan(rows, &ev))
}
