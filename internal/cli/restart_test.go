package cli_test

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/internal/pgcluster"
)

// TestRestart: `read --tail` and `load` ride out a PostgreSQL restart (a
// fast shutdown, which ends every session, then a start): load writes
// exactly the events it was asked for, once each (its retries carry event
// UUIDs), and the tail prints every one of them once and keeps going.
func TestRestart(t *testing.T) {
	t.Parallel()
	c := pgcluster.Start(t)
	db := c.URL()
	r := run(t, db, "", "migrate")
	require.Equal(t, 0, r.code, r.stderr)

	tail := exec.Command(binary, "--db", db, "read", "--tail", "--json")
	stdout, err := tail.StdoutPipe()
	require.NoError(t, err)
	var tailErr lockedBuffer
	tail.Stderr = &tailErr
	require.NoError(t, tail.Start())
	t.Cleanup(func() { _ = tail.Process.Kill(); _ = tail.Wait() })
	printed := make(chan string, 10000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev struct {
				Position string `json:"position"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				printed <- ev.Position
			}
		}
		close(printed)
	}()

	const events = 400
	load := exec.Command(binary, "--db", db, "load", "--type", "cat", "--events", "400", "--concurrency", "4")
	var loadOut, loadErr lockedBuffer
	load.Stdout, load.Stderr = &loadOut, &loadErr
	require.NoError(t, load.Start())
	t.Cleanup(func() { _ = load.Process.Kill() })
	seen := map[string]int{}
	next := func(what string) {
		t.Helper()
		select {
		case p, ok := <-printed:
			require.True(t, ok, "the tail ended: %s", tailErr.String())
			seen[p]++
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: the tail printed %d events; stderr: %s", what, len(seen), tailErr.String())
		}
	}
	for range 50 {
		next("before the restart")
	}
	c.Restart(t, pgcluster.Fast)
	require.NoError(t, load.Wait(), "load rides out the restart: %s %s", loadOut.String(), loadErr.String())
	require.Contains(t, loadOut.String(), "wrote 400 events")
	require.Contains(t, loadErr.String(), "retrying", "load says it waits for the database")
	for len(seen) < events {
		next("after the restart")
	}
	for p, n := range seen {
		require.Equal(t, 1, n, "event %s printed once", p)
	}
	r = run(t, db, "", "read", "--json")
	require.Equal(t, events, strings.Count(r.stdout, "\n"), "exactly the events load was asked for")
	require.Nil(t, tail.ProcessState, "the tail is still running")
}
