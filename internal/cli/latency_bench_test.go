package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/internal/dbtest"
)

// BenchmarkTailLatency measures, across processes, the time from an
// event's recorded time (its transaction's start, just before the commit)
// to the line that `meowmx read --tail --json` prints for it, with two
// writers in other processes: `meowmx append` (a process that exits right
// after its append) and plain SQL from psql (no NOTIFY). Each iteration
// runs one writer process. MEOWMX_BASELINE_BINARY, when set, names another
// meowmx binary to measure beside this one (an older build, for the
// polling figure). Run:
//
//	go test -run '^$' -bench TailLatency -benchtime 100x ./internal/cli/
func BenchmarkTailLatency(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "meowmx")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/meowmx").CombinedOutput()
	require.NoError(b, err, "%s", out)
	binaries := map[string]string{"meowmx": bin}
	if old := os.Getenv("MEOWMX_BASELINE_BINARY"); old != "" {
		binaries["baseline"] = old
	}
	for name, tail := range binaries {
		for _, writer := range []string{"append", "psql"} {
			b.Run(name+"/"+writer, func(b *testing.B) { benchTail(b, tail, bin, writer) })
		}
	}
}

func benchTail(b *testing.B, tailBin, appendBin, writer string) {
	_, schema := dbtest.Schema(b)
	u, err := url.Parse(dbtest.DatabaseURL())
	require.NoError(b, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db := u.String()
	require.NoError(b, exec.Command(appendBin, "--db", db, "migrate").Run())

	tail := exec.Command(tailBin, "--db", db, "read", "--tail", "--json")
	stdout, err := tail.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, tail.Start())
	b.Cleanup(func() { _ = tail.Process.Kill(); _ = tail.Wait() })
	type line struct {
		ID         string    `json:"aggregate_id"`
		RecordedAt time.Time `json:"recorded_at"`
	}
	lines := make(chan line, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l
			}
		}
		close(lines)
	}()
	psqlURL := dbtest.DatabaseURL()
	table := pgx.Identifier{schema}.Sanitize()
	var latencies []time.Duration
	i := 0
	for b.Loop() {
		id := fmt.Sprint("l", i)
		i++
		var cmd *exec.Cmd
		if writer == "append" {
			cmd = exec.Command(appendBin, "--db", db, "append", "--type", "cat", "--id", id, "--event", "Meowed", "--data", `{}`)
		} else {
			cmd = exec.Command("psql", "-q", "-X", psqlURL, "-c", `WITH a AS (INSERT INTO `+table+`.es_aggregates (id, version, aggregate_type) VALUES ('`+id+`', 0, 'cat'))
				INSERT INTO `+table+`.es_events (transaction_id, aggregate_id, version, event_type, json_data) VALUES (pg_current_xact_id(), '`+id+`', 0, 'Meowed', '{}')`)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v: %s", writer, err, out)
		}
		select {
		case l := <-lines:
			if l.ID != id {
				b.Fatalf("printed %q, want %q", l.ID, id)
			}
			latencies = append(latencies, time.Since(l.RecordedAt))
			if d := latencies[len(latencies)-1]; d > 100*time.Millisecond && os.Getenv("MEOWMX_DEBUG") != "" {
				b.Logf("sample %d: %s", i, d)
			}
		case <-time.After(30 * time.Second):
			b.Fatalf("%s: the tail did not print %s", writer, id)
		}
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}
