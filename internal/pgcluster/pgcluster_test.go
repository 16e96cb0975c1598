package pgcluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/meowmx/meowmx/internal/pgcluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, url, app string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	if app != "" {
		cfg.RuntimeParams["application_name"] = app
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// alive tells whether conn still answers.
func alive(conn *pgx.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, "SELECT 1")
	return err == nil
}

// TestCluster restarts, stops and starts a cluster and terminates its
// sessions: each ends the sessions it should, and the server accepts
// connections afterwards.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := pgcluster.Start(t)
	ctx := context.Background()
	conn := connect(t, c.URL(), "")
	var fsync string
	require.NoError(t, conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync))
	require.Equal(t, "off", fsync)
	_, err := conn.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)")
	require.NoError(t, err)

	for _, mode := range []string{pgcluster.Fast, pgcluster.Immediate} {
		before := connect(t, c.URL(), "")
		c.Restart(t, mode)
		require.False(t, alive(before), "a session survived pg_ctl restart -m %s", mode)
		var n int
		require.NoError(t, connect(t, c.URL(), "").QueryRow(ctx, "SELECT n FROM kept").Scan(&n), mode)
		require.Equal(t, 1, n)
	}

	victim, bystander := connect(t, c.URL(), "victim"), connect(t, c.URL(), "bystander")
	require.Equal(t, 1, c.TerminateBackends(t, "victim"))
	require.False(t, alive(victim))
	require.True(t, alive(bystander))
	// The bystander and the session of the loop's last SELECT.
	require.Equal(t, 2, c.TerminateBackends(t, ""))
	require.False(t, alive(bystander))
	require.Zero(t, c.TerminateBackends(t, ""))

	c.Stop(t, pgcluster.Fast)
	cfg, err := pgx.ParseConfig(c.URL())
	require.NoError(t, err)
	cfg.ConnectTimeout = 2 * time.Second
	_, err = pgx.ConnectConfig(ctx, cfg)
	require.Error(t, err, "connected to a stopped server")
	c.Start(t)
	require.True(t, alive(connect(t, c.URL(), "")))
}

// TestClustersInParallel starts two clusters at once: each gets its own
// port.
func TestClustersInParallel(t *testing.T) {
	t.Parallel()
	a, b := pgcluster.Start(t), pgcluster.Start(t)
	require.NotEqual(t, a.Port(), b.Port())
	require.True(t, alive(connect(t, a.URL(), "")))
	require.True(t, alive(connect(t, b.URL(), "")))
}
