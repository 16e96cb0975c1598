package meowmxsqlite_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// Environment of a child process of TestProcesses.
const (
	childEnvPath = "MEOWMX_SQLITE_CHILD_PATH"
	childEnvID   = "MEOWMX_SQLITE_CHILD_ID"
)

const (
	children       = 4
	childWins      = 15 // appends each child makes to the shared stream
	childNewStream = 15 // streams all children race to create
	childGoroutine = 4  // goroutines per child
)

// childResult is what a child prints: the versions it wrote to the shared
// stream and the new streams it created.
type childResult struct {
	Versions []int64
	Created  []string
}

// TestProcesses runs several processes (this test binary, re-executed) on
// one database file. Each appends to one shared stream, at the version it
// last read, until it has won childWins times, and races the others to
// create the same new streams with NoStream. Every append either lands or
// fails with ErrConcurrency (never "database is locked"), each version of
// the shared stream is won by exactly one writer, and each new stream is
// created by exactly one.
func TestProcesses(t *testing.T) {
	if os.Getenv(childEnvPath) != "" {
		t.Skip("in a child process")
	}
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	d, err := meowmxsqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	s, err := meowmx.NewStore(d, nil)
	require.NoError(t, err)
	_, err = s.Migrate(ctx, nil)
	require.NoError(t, err)

	results := make([]childResult, children)
	var wg sync.WaitGroup
	for i := range children {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestProcessChild$", "-test.v")
			cmd.Env = append(os.Environ(), childEnvPath+"="+path, childEnvID+"="+strconv.Itoa(i))
			out, err := cmd.CombinedOutput()
			if !assertNoError(t, err, "child %d:\n%s", i, out) {
				return
			}
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
					assertNoError(t, json.Unmarshal([]byte(line), &results[i]), "child %d result", i)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	won := map[int64]int{}
	created := map[string]int{}
	for i, r := range results {
		require.Len(t, r.Versions, childWins*childGoroutine, "child %d", i)
		for _, v := range r.Versions {
			won[v]++
		}
		for _, c := range r.Created {
			created[c]++
		}
	}
	total := children * childGoroutine * childWins
	for v := range int64(total) {
		require.Equal(t, 1, won[v], "version %d of the shared stream is won by exactly one append", v)
	}
	evs, err := s.ReadStream(ctx, "shared", nil)
	require.NoError(t, err)
	require.Len(t, evs, total)
	require.Len(t, created, childNewStream)
	for name, n := range created {
		require.Equal(t, 1, n, "stream %s is created by exactly one append", name)
		evs, err := s.ReadStream(ctx, name, nil)
		require.NoError(t, err)
		require.Len(t, evs, 1)
	}
}

// assertNoError reports err without stopping the goroutine's test.
func assertNoError(t *testing.T, err error, format string, args ...any) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", fmt.Sprintf(format, args...), err)
		return false
	}
	return true
}

// TestProcessChild is the work of one child process of TestProcesses; it is
// skipped in a normal run.
func TestProcessChild(t *testing.T) {
	path := os.Getenv(childEnvPath)
	if path == "" {
		t.Skip("run by TestProcesses")
	}
	ctx := context.Background()
	d, err := meowmxsqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	defer d.Close()
	s, err := meowmx.NewStore(d, nil)
	require.NoError(t, err)
	me := os.Getenv(childEnvID)

	var mu sync.Mutex
	var res childResult
	var wg sync.WaitGroup
	for g := range childGoroutine {
		wg.Go(func() {
			shared := meowmx.StreamID{Type: "race", ID: "shared"}
			for wins, n := 0, 0; wins < childWins || n < childNewStream; {
				if n < childNewStream {
					name := fmt.Sprintf("new-%d", n)
					_, err := s.Append(ctx, meowmx.StreamID{Type: "race", ID: name}, meowmx.NoStream,
						ev("Created", fmt.Sprintf(`{"by":"%s/%d"}`, me, g)))
					switch {
					case err == nil:
						mu.Lock()
						res.Created = append(res.Created, name)
						mu.Unlock()
					case !errors.Is(err, meowmx.ErrConcurrency):
						t.Errorf("create %s: %v", name, err)
						return
					}
					n++
				}
				if wins == childWins {
					continue
				}
				expected := meowmx.NoStream
				info, err := s.Stream(ctx, "shared")
				switch {
				case err == nil:
					expected = meowmx.Exact(info.Version)
				case !errors.Is(err, meowmx.ErrStreamNotFound):
					t.Errorf("stream: %v", err)
					return
				}
				r, err := s.Append(ctx, shared, expected, ev("Won", fmt.Sprintf(`{"by":"%s/%d"}`, me, g)))
				switch {
				case err == nil:
					wins++
					if r.Version != int64(expected)+1 {
						t.Errorf("expected %s, appended at %d", expected, r.Version)
					}
					mu.Lock()
					res.Versions = append(res.Versions, r.Version)
					mu.Unlock()
				case !errors.Is(err, meowmx.ErrConcurrency):
					t.Errorf("append at %s: %v", expected, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b, err := json.Marshal(res)
	require.NoError(t, err)
	fmt.Printf("RESULT %s\n", b)
}
