package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(dbtest.ClosingPool(m)) }

// summarySQL counts the rows of orders_view (%s) by everything but the id,
// which the story draws at random.
const summarySQL = `SELECT customer, total_cents, status, carrier, version, count(*)
	FROM %s GROUP BY customer, total_cents, status, carrier, version ORDER BY customer`

// wantSummary is orders_view after the story, run twice, and
// place/confirm/ship of o-1.
var wantSummary = []string{
	"ann 1250 shipped DHL 2: 3",
	"bob 9900 confirmed  1: 2",
	"cat 525 placed  0: 2",
}

func TestRunSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "orders.db")
	testRun(t, path, "", func(ctx context.Context, query string) []string {
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		defer db.Close()
		rows, err := db.QueryContext(ctx, query)
		require.NoError(t, err)
		defer rows.Close()
		return scanSummary(t, rows)
	})
}

func TestRunPostgreSQL(t *testing.T) {
	t.Parallel()
	pool, schema := dbtest.Schema(t)
	testRun(t, dbtest.DatabaseURL(), schema, func(ctx context.Context, query string) []string {
		rows, err := pool.Query(ctx, query)
		require.NoError(t, err)
		defer rows.Close()
		return scanSummary(t, rows)
	})
}

// testRun runs the story twice on db, the second run's subscription going
// on from the first one's checkpoint, then a few commands, and checks the
// read model with summary. An event handed to the read model twice would
// fail the run: its INSERT would hit the primary key.
func testRun(t *testing.T, db, schema string, summary func(ctx context.Context, query string) []string) {
	ctx := t.Context()
	var out bytes.Buffer
	for range 2 {
		require.NoError(t, run(ctx, &out, db, schema, nil), out.String())
	}
	for _, args := range [][]string{{"place", "o-1", "ann", "12.50"}, {"confirm", "o-1"}, {"ship", "o-1", "DHL"}} {
		out.Reset()
		require.NoError(t, run(ctx, &out, db, schema, args), out.String())
	}
	out.Reset()
	require.NoError(t, run(ctx, &out, db, schema, []string{"list"}))
	require.Regexp(t, `(?m)^o-1 +ann +12\.50 +shipped +DHL +2$`, out.String())

	table := `"orders_view"`
	if schema != "" {
		table = pgx.Identifier{schema, "orders_view"}.Sanitize()
	}
	require.Equal(t, wantSummary, summary(ctx, fmt.Sprintf(summarySQL, table)))

	require.Error(t, run(ctx, &out, db, schema, []string{"ship", "o-1"}), "usage")
}

// scanSummary reads the rows of summarySQL, from database/sql or pgx.
func scanSummary(t *testing.T, rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) []string {
	var out []string
	for rows.Next() {
		var customer, status, carrier string
		var total, version, n int64
		require.NoError(t, rows.Scan(&customer, &total, &status, &carrier, &version, &n))
		out = append(out, fmt.Sprintf("%s %d %s %s %d: %d", customer, total, status, carrier, version, n))
	}
	require.NoError(t, rows.Err())
	return out
}

// A failing handler stops the subscription, and the program with its error
// rather than waiting for the read model forever.
func TestRunHandlerFails(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "orders.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	// An orders_view that refuses every INSERT of the handler.
	_, err = db.ExecContext(t.Context(), `CREATE TABLE orders_view (id TEXT PRIMARY KEY, customer TEXT, total_cents BIGINT,
		status TEXT, carrier TEXT NOT NULL DEFAULT '', version BIGINT, extra TEXT NOT NULL)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	var out bytes.Buffer
	err = run(t.Context(), &out, path, "", []string{"place", "o-1", "ann", "1.00"})
	require.ErrorIs(t, err, meowmx.ErrHandler)
	require.ErrorContains(t, err, "extra")
}
