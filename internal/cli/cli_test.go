package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/internal/dbtest"
)

type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary with args on database db, feeding stdin.
func run(t *testing.T, db, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang fails, not stalls
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--db", db}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "MEOWMX_DATABASE_URL=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errorsAs(err, &ee) {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errOut.String()}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*target = e
	return ok
}

// databases returns one fresh database per backend.
func databases(t *testing.T) map[string]string {
	t.Helper()
	_, schema := dbtest.Schema(t)
	u, err := url.Parse(dbtest.DatabaseURL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pg := u.String()
	r := run(t, pg, "", "migrate")
	require.Equal(t, 0, r.code, r.stderr)
	return map[string]string{
		"postgres": pg,
		"sqlite":   filepath.Join(t.TempDir(), "meowmx.db"),
	}
}

func TestAppendAndRead(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := run(t, db, "", "append", "--type", "cat", "--id", "tom", "--event", "Adopted", "--data", `{"name":"Tom"}`, "--expected-version", "no-stream")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "version 0")
			r = run(t, db, "", "append", "--type", "cat", "--id", "tom", "--event", "Fed", "--data", `{"food":"tuna"}`, "--metadata", `{"by":"test"}`, "--expected-version", "0")
			require.Equal(t, 0, r.code, r.stderr)

			r = run(t, db, "", "append", "--type", "cat", "--id", "tom", "--event", "Fed", "--data", `{"food":`)
			require.Equal(t, 2, r.code)
			require.Equal(t, "meowmx: invalid events[0].data: not valid JSON\n", r.stderr)
			r = run(t, db, "", "append", "--type", "cat", "--id", "tom", "--event", "Fed", "--data", `{}`, "--metadata", `nope`)
			require.Equal(t, 2, r.code)
			r = run(t, db, "", "append", "--type", "cat", "--id", "tom", "--event", "Fed", "--data", `{}`, "--expected-version", "0")
			require.Equal(t, 3, r.code)
			require.Equal(t, "meowmx: stream cat/tom is at version 1, expected 0\n", r.stderr)
			r = run(t, db, "", "append", "--type", "dog", "--id", "tom", "--event", "Fed", "--data", `{}`)
			require.Equal(t, 2, r.code)
			r = run(t, db, "", "append", "--type", "cat", "--id", "tom", "--event", "Fed", "--data", `{}`, "--expected-version", "soon")
			require.Equal(t, 2, r.code)
			r = run(t, db, "", "append", "--type", "cat", "--id", "tom", "--event", "Fed")
			require.Equal(t, 2, r.code, "missing --data")
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)

			r = run(t, db, "", "read", "--id", "tom", "--json")
			require.Equal(t, 0, r.code, r.stderr)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			require.Len(t, lines, 2, "refused appends wrote nothing")
			var ev map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[1]), &ev))
			require.Equal(t, "Fed", ev["event_type"])
			require.Equal(t, map[string]any{"food": "tuna"}, ev["data"])
			require.Equal(t, map[string]any{"by": "test"}, ev["metadata"])
			require.Equal(t, float64(1), ev["version"])

			r = run(t, db, "", "read", "--id", "tom", "--from", "1")
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, 1, strings.Count(r.stdout, "\n"))
			require.Contains(t, r.stdout, `Fed {"food":"tuna"}`)
			r = run(t, db, "", "read", "--type", "cat", "--pretty")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "\n      \"food\": \"tuna\"\n")
			r = run(t, db, "", "read", "--limit", "1")
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, 1, strings.Count(r.stdout, "\n"))
			r = run(t, db, "", "read", "--type", "cat", "--from", "12:x")
			require.Equal(t, 2, r.code, "a category reads from a position")

			// A bare transaction id, as the Python client's read-events
			// example takes: after (--from) or up to (--to) its events.
			// (On SQLite every event's transaction id is 0, as with the
			// Python client there.)
			if name != "postgres" {
				return
			}
			var first map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
			tx := strings.SplitN(first["position"].(string), ":", 2)[0]
			r = run(t, db, "", "read", "--type", "cat", "--from", tx)
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, 1, strings.Count(r.stdout, "\n"), r.stdout)
			require.Contains(t, r.stdout, "Fed")
			r = run(t, db, "", "read", "--to", tx)
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, 1, strings.Count(r.stdout, "\n"), r.stdout)
			require.Contains(t, r.stdout, "Adopted")
		})
	}
}

func TestUpdateCatConflict(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := run(t, db, "\n", "update-cat", "felix")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "saved felix Adopted at version 0")

			// Two terminals load felix; Enter in one, then in the other.
			start := func() (*exec.Cmd, io.WriteCloser, *bufio.Reader, *bytes.Buffer) {
				cmd := exec.Command(binary, "--db", db, "update-cat", "felix")
				stdin, err := cmd.StdinPipe()
				require.NoError(t, err)
				stdout, err := cmd.StdoutPipe()
				require.NoError(t, err)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				require.NoError(t, cmd.Start())
				t.Cleanup(func() { _ = cmd.Process.Kill() }) // when an assertion fails first
				out := bufio.NewReader(stdout)
				for {
					line, err := out.ReadString('\n')
					require.NoError(t, err, "waiting for the prompt")
					if strings.Contains(line, "press Enter") {
						require.Contains(t, line, "version 0")
						break
					}
				}
				return cmd, stdin, out, &stderr
			}
			first, firstIn, firstOut, _ := start()
			second, secondIn, _, secondErr := start()
			_, err := io.WriteString(firstIn, "\n")
			require.NoError(t, err)
			rest, _ := io.ReadAll(firstOut)
			require.NoError(t, first.Wait())
			require.Contains(t, string(rest), "at version 1")
			_, err = io.WriteString(secondIn, "\n")
			require.NoError(t, err)
			err = second.Wait()
			require.Error(t, err)
			require.Equal(t, 3, second.ProcessState.ExitCode())
			require.Contains(t, secondErr.String(), "conflict: felix changed after it was loaded")
			require.Equal(t, 1, strings.Count(secondErr.String(), "meowmx:"), "one prefix: %s", secondErr.String())
			require.Equal(t, 1, strings.Count(secondErr.String(), "\n"))
		})
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	r := run(t, "", "", "demo")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "bob's append was refused")
	require.Contains(t, r.stdout, "[subscriber] cat/blanco v4 Petted")
	require.Contains(t, r.stdout, "[subscriber] cat/blanco v0 Adopted")
	require.Contains(t, r.stdout, "M E O W")
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			r := run(t, db, "", "demo")
			require.Equal(t, 0, r.code, r.stderr)
			r = run(t, db, "", "demo")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "blanco-2", "a second demo adopts another cat")
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := run(t, db, "", "load", "--type", "order", "--events", "300", "--concurrency", "8", "--max-length", "5", "--percent-new", "10")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "wrote 300 events")
			r = run(t, db, "", "read", "--type", "order", "--json")
			require.Equal(t, 0, r.code, r.stderr)
			require.Equal(t, 300, strings.Count(r.stdout, "\n"), "every counted event is stored")
			r = run(t, db, "", "load", "--type", "order", "--percent-new", "101")
			require.Equal(t, 2, r.code)

			// --event-types, as the seed's aggregate-writer takes it.
			r = run(t, db, "", "load", "--type", "toy", "--events", "60", "--event-types", "Thrown,Caught")
			require.Equal(t, 0, r.code, r.stderr)
			r = run(t, db, "", "read", "--type", "toy", "--json")
			require.Equal(t, 0, r.code, r.stderr)
			seen := map[string]int{}
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				var ev map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &ev))
				seen[ev["event_type"].(string)]++
			}
			require.Len(t, seen, 2, "both types, and only those: %v", seen)
			require.Equal(t, 60, seen["Thrown"]+seen["Caught"])
			r = run(t, db, "", "load", "--type", "toy", "--event-types", "Thrown,")
			require.Equal(t, 2, r.code, "an empty event type")
		})
	}
}

// TestTailStopsOnInterrupt: read --tail and sub print what another
// process appends while they watch, and exit 0 on Ctrl-C.
func TestTailStopsOnInterrupt(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for i, args := range [][]string{{"read", "--tail"}, {"sub"}} {
				cmd := exec.Command(binary, append([]string{"--db", db}, args...)...)
				out := &lockedBuffer{}
				cmd.Stdout = out
				require.NoError(t, cmd.Start())
				t.Cleanup(func() { _ = cmd.Process.Kill() }) // when an assertion fails first
				id := fmt.Sprintf("tail-%s-%d", name, i)
				// Append until the watcher prints it: it may not be watching
				// yet when the first append commits (sub starts at the head).
				require.Eventually(t, func() bool {
					r := run(t, db, "", "append", "--type", "cat", "--id", id, "--event", "Meowed", "--data", `{}`)
					require.Equal(t, 0, r.code, r.stderr)
					return waitFor(out, id, 2*time.Second)
				}, time.Minute, time.Millisecond, "%v prints what another process appends: %s", args, out.String())
				require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
				require.NoError(t, cmd.Wait(), "%v exits 0 on Ctrl-C: %s", args, out.String())
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer that a child process writes while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor tells whether out contains s within d.
func waitFor(out *lockedBuffer, s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(out.String(), s) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func TestHelpHasExamples(t *testing.T) {
	t.Parallel()
	for _, c := range []string{"migrate", "append", "read", "sub", "update-cat", "load", "demo", "worker", "subs"} {
		r := run(t, "", "", c, "--help")
		require.Equal(t, 0, r.code, r.stderr)
		require.Contains(t, r.stdout, "Examples:", c)
	}
	r := run(t, "", "", "--help")
	require.Contains(t, r.stdout, "Exit codes:")
	r = run(t, "", "", "nosuch")
	require.Equal(t, 2, r.code)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"))
}

func TestWorkerAndSubs(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, id := range []string{"a", "b"} {
				r := run(t, db, "", "append", "--type", "cat", "--id", id, "--event", "Adopted", "--data", `{}`)
				require.Equal(t, 0, r.code, r.stderr)
			}
			r := run(t, db, "", "append", "--type", "dog", "--id", "c", "--event", "Adopted", "--data", `{}`)
			require.Equal(t, 0, r.code, r.stderr)

			cmd := exec.Command(binary, "--db", db, "worker", "--name", "w1", "--type", "cat")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() }) // when an assertion fails first
			out := bufio.NewReader(stdout)
			var handled []string
			for len(handled) < 2 {
				line, err := out.ReadString('\n')
				require.NoError(t, err)
				if strings.Contains(line, "Adopted") {
					handled = append(handled, line)
				}
			}
			require.Contains(t, handled[0], "cat/a v0")
			require.Contains(t, handled[1], "cat/b v0")
			// Printed in the handler; the checkpoint commits right after.
			require.Eventually(t, func() bool {
				r := run(t, db, "", "subs")
				return regexp.MustCompile(`w1\s+\S+\s+0\s+-\s+0\s+0\s+\S+\s+types cat`).MatchString(r.stdout)
			}, 20*time.Second, 50*time.Millisecond)
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			_, _ = io.Copy(io.Discard, out)
			require.NoError(t, cmd.Wait(), "a worker stops cleanly on Ctrl-C")

			r = run(t, db, "", "subs")
			require.Equal(t, 0, r.code, r.stderr)
			require.Regexp(t, `w1\s+\S+\s+0\s+-\s+0\s+0\s+\S+\s+types cat`, r.stdout)
			r = run(t, db, "", "subs", "reset", "w1")
			require.Equal(t, 0, r.code, r.stderr)
			r = run(t, db, "", "subs")
			require.Regexp(t, `w1\s+0:0\s+2\s+(\d+h)?(\d+m)?\d+s\s`, r.stdout, "after a reset the worker is 2 events behind, the oldest recorded seconds ago")
			r = run(t, db, "", "subs", "parked", "w1")
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "no parked events")
			r = run(t, db, "", "subs", "reset", "nosuch")
			require.Equal(t, 2, r.code, r.stderr)
			r = run(t, db, "", "subs", "reset", "w1", "--to", "nope")
			require.Equal(t, 2, r.code, r.stderr)
			r = run(t, db, "", "subs", "delete", "w1")
			require.Equal(t, 0, r.code, r.stderr)
			r = run(t, db, "", "subs")
			require.Contains(t, r.stdout, "no subscriptions")
		})
	}
}

// TestWorkerGroup runs two `meowmx worker --partitions 4` members of one
// group: between them they print every event once, and `meowmx subs`
// lists the group, its members and each partition with its owner.
func TestWorkerGroup(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const n = 12
			for i := range n {
				r := run(t, db, "", "append", "--type", "cat", "--id", fmt.Sprint("g", i), "--event", "Adopted", "--data", `{}`)
				require.Equal(t, 0, r.code, r.stderr)
			}
			var mu sync.Mutex
			printed := map[string]int{}
			var workers []*exec.Cmd
			for range 2 {
				cmd := exec.Command(binary, "--db", db, "worker", "--name", "grp", "--partitions", "4")
				stdout, err := cmd.StdoutPipe()
				require.NoError(t, err)
				require.NoError(t, cmd.Start())
				t.Cleanup(func() { _ = cmd.Process.Kill() })
				workers = append(workers, cmd)
				go func() {
					sc := bufio.NewScanner(stdout)
					stream := regexp.MustCompile(`cat/g\d+ v0`)
					for sc.Scan() {
						if ev := stream.FindString(sc.Text()); ev != "" {
							mu.Lock()
							printed[ev]++
							mu.Unlock()
						}
					}
				}()
			}
			var last string
			defer func() {
				if t.Failed() {
					t.Logf("last listing:\n%s", last)
				}
			}()
			require.Eventually(t, func() bool {
				r := run(t, db, "", "subs")
				last = r.stdout + r.stderr
				return strings.Contains(r.stdout, "consumer group: 4 partitions, 2 members") &&
					strings.Count(r.stdout, "owned by") == 4 && regexp.MustCompile(`grp\s+\S+\s+0\s`).MatchString(r.stdout)
			}, 30*time.Second, 50*time.Millisecond)
			r := run(t, db, "", "subs")
			for p := range 4 {
				require.Regexp(t, fmt.Sprintf(`grp#%d\s+\S+\s+0\s`, p), r.stdout)
			}
			require.Equal(t, 2, strings.Count(r.stdout, "member: "), r.stdout)
			for _, cmd := range workers {
				require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
				require.NoError(t, cmd.Wait(), "a member stops cleanly on Ctrl-C")
			}
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, printed, n, "every event printed: %v", printed)
			for ev, k := range printed {
				require.Equal(t, 1, k, "%s printed once", ev)
			}
			r = run(t, db, "", "worker", "--name", "grp", "--partitions", "8")
			require.NotEqual(t, 0, r.code, "the partitions of a group are fixed")
			require.Contains(t, r.stderr, "partitions")
		})
	}
}
