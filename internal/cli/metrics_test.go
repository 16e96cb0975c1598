package cli_test

import (
	"bufio"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWorkerMetrics: `meowmx worker --metrics ADDR` serves the store's
// metrics for Prometheus: the events its subscription handled, its lag,
// the listener's state, and the process's own metrics.
func TestWorkerMetrics(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "sqlite" {
				db = filepath.Join(t.TempDir(), "events.db")
			}
			for _, id := range []string{"a", "b", "c"} {
				r := run(t, db, "", "append", "--type", "cat", "--id", id, "--event", "Adopted", "--data", `{}`)
				require.Equal(t, 0, r.code, r.stderr)
			}
			cmd := exec.Command(binary, "--db", db, "worker", "--name", "m1", "--metrics", "127.0.0.1:0")
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			cmd.Stdout = io.Discard
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() }) // when an assertion fails first
			errOut := bufio.NewReader(stderr)
			line, err := errOut.ReadString('\n')
			require.NoError(t, err)
			url, ok := strings.CutPrefix(strings.TrimSpace(line), "metrics: ")
			require.True(t, ok, line)
			var logs strings.Builder
			var logsMu sync.Mutex
			logged := make(chan struct{})
			go func() {
				defer close(logged)
				for {
					l, err := errOut.ReadString('\n')
					logsMu.Lock()
					logs.WriteString(l)
					logsMu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			stderrNow := func() string { logsMu.Lock(); defer logsMu.Unlock(); return logs.String() }

			scrape := func() string {
				resp, err := http.Get(url) //nolint:noctx // a test's local scrape
				if err != nil {
					return ""
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return string(b)
			}
			handled := regexp.MustCompile(`(?m)^meowmx_subscription_handled_total\{[^}]*meowmx_subscription="m1"[^}]*\} 3$`)
			lag := regexp.MustCompile(`(?m)^meowmx_subscription_lag\{[^}]*meowmx_subscription="m1"[^}]*\} 0$`)
			require.Eventually(t, func() bool {
				body := scrape()
				return handled.MatchString(body) && lag.MatchString(body)
			}, 30*time.Second, 50*time.Millisecond, "the worker's metrics: %s\nits log: %s", scrape(), stderrNow())
			body := scrape()
			require.Regexp(t, `(?m)^meowmx_listener_connected\{[^}]*\} 1$`, body)
			require.Regexp(t, `(?m)^go_goroutines `, body, "the process's metrics too")
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			<-logged
			require.NoError(t, cmd.Wait(), "a worker with --metrics stops cleanly on Ctrl-C")

			r := run(t, db, "", "worker", "--name", "m2", "--metrics", "256.0.0.1:http")
			require.Equal(t, 1, r.code, r.stderr)
			require.Contains(t, r.stderr, "--metrics")
		})
	}
}
