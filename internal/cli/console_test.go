package cli_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startConsole runs meowmx console with args on an SQLite file and returns
// the address it prints; the process is interrupted when the test ends,
// and must exit 0.
func startConsole(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang fails, not stalls
	t.Cleanup(cancel)
	db := filepath.Join(t.TempDir(), "c.db")
	cmd := exec.CommandContext(ctx, binary, append([]string{"--db", db, "console"}, args...)...)
	cmd.Env = append(os.Environ(), "MEOWMX_DATABASE_URL=", "MEOWMX_CONSOLE_TOKEN=")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		require.NoError(t, cmd.Wait(), "Ctrl-C ends the console cleanly")
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	i := strings.Index(line, "http://")
	require.GreaterOrEqual(t, i, 0, line)
	return strings.TrimSpace(line[i:])
}

func TestConsoleCommand(t *testing.T) {
	t.Parallel()
	r := run(t, "", "", "console", "--help")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "Examples:")

	t.Run("TokenOffLoopback", func(t *testing.T) {
		t.Parallel()
		r := run(t, filepath.Join(t.TempDir(), "c.db"), "", "console", "--listen", "0.0.0.0:0")
		require.Equal(t, 2, r.code, r.stderr)
		require.Contains(t, r.stderr, "token")
		r = run(t, filepath.Join(t.TempDir(), "c.db"), "", "console", "--listen", ":0")
		require.Equal(t, 2, r.code, "an empty host is every interface")
	})

	t.Run("ReadOnlyOnLoopback", func(t *testing.T) {
		t.Parallel()
		addr := startConsole(t, "--listen", "127.0.0.1:0")
		require.NotContains(t, addr, "token")
		for path, code := range map[string]int{"": 200, "log": 200, "subscriptions": 200, "confirm?action=delete&name=x": 403} {
			res, err := http.Get(addr + path)
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, code, res.StatusCode, path)
		}
	})

	t.Run("RandomToken", func(t *testing.T) {
		t.Parallel()
		addr := startConsole(t, "--listen", "0.0.0.0:0", "--token", "random", "--allow-writes")
		base, tok, ok := strings.Cut(addr, "?token=")
		require.True(t, ok, addr)
		require.Len(t, tok, 32)
		res, err := http.Get(base)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		res, err = http.Get(addr) // follows the redirect with the cookie? no jar: check the header way
		require.NoError(t, err)
		res.Body.Close()
		req, _ := http.NewRequest(http.MethodGet, base+"log", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
	})
}
