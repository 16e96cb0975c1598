package cli_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/internal/dbtest"
)

// requireOneLine checks that a failed command wrote one line on stderr,
// with one meowmx: prefix.
func requireOneLine(t *testing.T, r result) {
	t.Helper()
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, "meowmx:"), "one prefix: %q", r.stderr)
}

// TestNotFound: every subcommand that names a subscription exits 2 and
// says "not found" when there is none.
func TestNotFound(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, args := range [][]string{
				{"subs", "parked", "nosuch"},
				{"subs", "replay", "nosuch"},
				{"subs", "replay", "nosuch", "12"},
				{"subs", "reset", "nosuch"},
				{"subs", "delete", "nosuch"},
			} {
				r := run(t, db, "", args...)
				require.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
				require.Contains(t, r.stderr, "not found", args)
				requireOneLine(t, r)
			}
		})
	}
}

// TestDBArgument: --db takes postgres URLs in any case and libpq key=value
// strings; a name that is neither an SQLite file nor a path ending in
// .db/.sqlite/.sqlite3 is refused, and no file is created.
func TestDBArgument(t *testing.T) {
	t.Parallel()
	_, schema := dbtest.Schema(t)
	u, err := url.Parse(dbtest.DatabaseURL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	upper := "POSTGRESQL" + strings.TrimPrefix(strings.TrimPrefix(u.String(), "postgresql"), "postgres")
	r := run(t, upper, "", "migrate")
	require.Equal(t, 0, r.code, r.stderr)
	r = run(t, upper, "", "append", "--type", "cat", "--id", "dsn", "--event", "Adopted", "--data", `{}`)
	require.Equal(t, 0, r.code, r.stderr)

	// The same database as a key=value string.
	pass, _ := u.User.Password()
	kv := "host=" + u.Hostname() + " port=" + u.Port() + " dbname=" + strings.TrimPrefix(u.Path, "/") +
		" user=" + u.User.Username() + " sslmode=disable search_path=" + schema
	if pass != "" {
		kv += " password=" + pass
	}
	r = run(t, kv, "", "read", "--id", "dsn")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "cat/dsn v0 Adopted")

	dir := t.TempDir()
	for _, bad := range []string{"app", filepath.Join(dir, "app"), "postgress://localhost/app", filepath.Join(dir, "x.txt")} {
		r := run(t, bad, "", "append", "--type", "cat", "--id", "x", "--event", "E", "--data", `{}`)
		require.Equal(t, 2, r.code, "%s: %s", bad, r.stderr)
		require.Contains(t, r.stderr, "--db")
		requireOneLine(t, r)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "a refused --db creates nothing")

	created := filepath.Join(dir, "new.db")
	r = run(t, created, "", "migrate")
	require.Equal(t, 0, r.code, r.stderr)
	require.FileExists(t, created, "migrate --db new.db creates it")
	for _, ok := range []string{filepath.Join(dir, "b.sqlite"), filepath.Join(dir, "c.SQLITE3")} {
		r = run(t, ok, "", "migrate")
		require.Equal(t, 0, r.code, r.stderr)
		require.FileExists(t, ok)
	}
	// An existing file is SQLite, whatever its name.
	require.NoError(t, os.Rename(created, filepath.Join(dir, "events")))
	r = run(t, filepath.Join(dir, "events"), "", "subs")
	require.Equal(t, 0, r.code, r.stderr)
}

// TestReadOnlySQLite: the commands that only read open an SQLite file
// read-only: they work on a file that may not be written, and write
// nothing to it.
func TestReadOnlySQLite(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "ro.db")
	r := run(t, db, "", "append", "--type", "cat", "--id", "ro", "--event", "Adopted", "--data", `{}`)
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, os.Chmod(db, 0o444))
	sum := func() [32]byte {
		b, err := os.ReadFile(db)
		require.NoError(t, err)
		return sha256.Sum256(b)
	}
	before := sum()
	for _, args := range [][]string{{"read"}, {"read", "--id", "ro"}, {"subs"}} {
		r := run(t, db, "", args...)
		require.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
		require.Empty(t, r.stderr, args)
	}
	r = run(t, db, "", "read", "--id", "ro")
	require.Contains(t, r.stdout, "cat/ro v0 Adopted")
	r = run(t, db, "", "subs", "parked", "nosuch")
	require.Equal(t, 2, r.code, r.stderr)
	require.Equal(t, before, sum(), "the read-only commands wrote nothing")
}

// TestSQLiteOpenError: an SQLite file that cannot be opened is named once.
func TestSQLiteOpenError(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "no-such-dir", "x.db")
	r := run(t, db, "", "read")
	require.Equal(t, 1, r.code, r.stderr)
	require.Equal(t, 1, strings.Count(r.stderr, db), "the path once: %s", r.stderr)
	requireOneLine(t, r)
}

// TestBadInputExitCodes: the cases an operator hits, each exit 2 with one
// short line, nothing written.
func TestBadInputExitCodes(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			long := strings.Repeat("x", 100_000)
			for _, args := range [][]string{
				{"append", "--type", "cat", "--id", long, "--event", "E", "--data", `{}`},
				{"append", "--type", long, "--id", "x", "--event", "E", "--data", `{}`},
				{"append", "--type", "cat", "--id", "x", "--event", long, "--data", `{}`},
				{"read", "--id", long},
			} {
				r := run(t, db, "", args...)
				require.Equal(t, 2, r.code, r.stderr)
				requireOneLine(t, r)
				require.Less(t, len(r.stderr), 300, "the id is not repeated: %s", r.stderr)
				require.Contains(t, r.stderr, "100000 bytes")
				require.Contains(t, r.stderr, "1024")
			}
			for _, args := range [][]string{
				{"append", "--type", "cat", "--id", "x", "--event", "E", "--data", `{}`, "--expected-version", long},
				{"read", "--type", "cat", "--from", long},
				{"read", "--id", "x", "--to", long},
				{"subs", "reset", "x", "--to", long},
				{"subs", "replay", "x", long},
			} {
				r := run(t, db, "", args...)
				require.Equal(t, 2, r.code, r.stderr)
				requireOneLine(t, r)
				require.Less(t, len(r.stderr), 300, "the input is not repeated whole: %s", r.stderr)
			}
			r := run(t, db, "", "read", "--json")
			require.Equal(t, 0, r.code, r.stderr)
			require.Empty(t, r.stdout, "nothing was written")

			// A checkpoint after the last event is refused.
			r = run(t, db, "", "append", "--type", "cat", "--id", "a", "--event", "E", "--data", `{}`)
			require.Equal(t, 0, r.code, r.stderr)
			worker := startWorker(t, db, "ahead")
			worker.stop(t)
			r = run(t, db, "", "subs", "reset", "ahead", "--to", "999999999:1")
			require.Equal(t, 2, r.code, r.stderr)
			require.Contains(t, r.stderr, "after the last event")
			requireOneLine(t, r)
			for _, l := range []string{"text", "json"} {
				r = run(t, db, "", "--log-format", l, "--log-level", "loud", "subs")
				require.Equal(t, 2, r.code, r.stderr)
			}
			r = run(t, db, "", "--log-format", "xml", "subs")
			require.Equal(t, 2, r.code, r.stderr)
		})
	}
}

// TestSchemaRefused: a schema name the server refuses is bad input.
func TestSchemaRefused(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(dbtest.DatabaseURL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", "pg_meowmx_reserved")
	u.RawQuery = q.Encode()
	r := run(t, u.String(), "", "migrate")
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "pg_meowmx_reserved")
	requireOneLine(t, r)
}

// worker is a `meowmx worker` running in the background.
type worker struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *lockedBuffer
}

// startWorker starts `meowmx worker --name name` and waits until it owns
// its subscription.
func startWorker(t *testing.T, db, name string, extra ...string) *worker {
	t.Helper()
	w := &worker{cmd: exec.Command(binary, append([]string{"--db", db, "worker", "--name", name}, extra...)...), stderr: &lockedBuffer{}}
	stdout, err := w.cmd.StdoutPipe()
	require.NoError(t, err)
	w.cmd.Stderr = w.stderr
	w.stdout = bufio.NewReader(stdout)
	require.NoError(t, w.cmd.Start())
	t.Cleanup(func() { _ = w.cmd.Process.Kill() })
	require.True(t, waitFor(w.stderr, "owned by this worker", time.Minute), "the worker logs its ownership: %s", w.stderr.String())
	return w
}

// stop sends Ctrl-C and checks that the worker exits 0.
func (w *worker) stop(t *testing.T) {
	t.Helper()
	go func() { _, _ = io.Copy(io.Discard, w.stdout) }()
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, w.cmd.Wait(), w.stderr.String())
}

// TestWorkerDeleted: a worker whose subscription is deleted exits 1 and
// says so.
func TestWorkerDeleted(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := startWorker(t, db, "doomed")
			r := run(t, db, "", "subs", "delete", "doomed")
			require.Equal(t, 0, r.code, r.stderr)
			go func() { _, _ = io.Copy(io.Discard, w.stdout) }()
			err := w.cmd.Wait()
			require.Error(t, err)
			require.Equal(t, 1, w.cmd.ProcessState.ExitCode(), w.stderr.String())
			require.Contains(t, w.stderr.String(), "deleted while this worker ran")
			require.NotContains(t, w.stderr.String(), "ResetSubscription")
		})
	}
}

// TestWorkerUnreachable: a worker that cannot reach its database says so
// and keeps retrying, or exits 1 with --fail-fast.
func TestWorkerUnreachable(t *testing.T) {
	t.Parallel()
	const down = "postgres://postgres@127.0.0.1:1/x?connect_timeout=1"
	r := run(t, down, "", "worker", "--name", "w", "--fail-fast")
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "cannot reach the database")
	requireOneLine(t, r)

	for _, format := range []string{"text", "json"} {
		cmd := exec.Command(binary, "--db", down, "--log-format", format, "worker", "--name", "w")
		stderr := &lockedBuffer{}
		cmd.Stderr = stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		require.True(t, waitFor(stderr, "cannot reach the database", time.Minute), stderr.String())
		require.True(t, waitFor(stderr, "retry", time.Minute), "it says when it retries: %s", stderr.String())
		if format == "json" {
			require.Regexp(t, `(?m)^\{"time":.*"level":"WARN","msg":"meowmx: worker: cannot reach the database`, stderr.String())
		} else {
			require.Regexp(t, `(?m)^time=\S+ level=WARN msg="meowmx: worker: cannot reach the database`, stderr.String())
		}
		require.Nil(t, cmd.ProcessState, "it keeps retrying")
		require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
		require.NoError(t, cmd.Wait(), "Ctrl-C stops it cleanly")
	}
}

// TestLoadSummary: load prints its summary when interrupted and when the
// database fails it.
func TestLoadSummary(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "load.db")
	cmd := exec.Command(binary, "--db", db, "load", "--type", "cat", "--events", "100000000")
	stdout := &lockedBuffer{}
	cmd.Stdout = stdout
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	require.Eventually(t, func() bool {
		r := run(t, db, "", "read", "--limit", "1")
		return r.code == 0 && r.stdout != ""
	}, time.Minute, 10*time.Millisecond, "load writes")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "Ctrl-C ends load with exit 0")
	require.Regexp(t, `interrupted: wrote \d+ of 100000000 events`, stdout.String())

	// Tables missing on PostgreSQL: a failure that is not retried.
	u, err := url.Parse(dbtest.DatabaseURL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", "meowmx_h19_not_migrated")
	u.RawQuery = q.Encode()
	r := run(t, u.String(), "", "load", "--type", "cat", "--events", "10")
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stdout, "failed: wrote 0 of 10 events")
}

// TestSubsNamesHorizonHolder: `meowmx subs` names the session that holds
// the horizon back, with its database and application.
func TestSubsNamesHorizonHolder(t *testing.T) {
	t.Parallel()
	dbs := databases(t)
	db := dbs["postgres"]
	w := startWorker(t, db, "held")
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dbtest.DatabaseURL())
	require.NoError(t, err)
	cfg.RuntimeParams["application_name"] = "h19-holder"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(ctx)) })
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	_, err = tx.Exec(ctx, `SELECT pg_current_xact_id()`)
	require.NoError(t, err)
	r := run(t, db, "", "append", "--type", "cat", "--id", "held", "--event", "E", "--data", `{}`)
	require.Equal(t, 0, r.code, r.stderr)
	dbname := strings.TrimPrefix(cfg.Database, "/")
	holder := regexp.MustCompile(`held back by pid \d+ in database ` + regexp.QuoteMeta(dbname) + `, application h19-holder \(`)
	var last string
	require.Eventually(t, func() bool {
		r := run(t, db, "", "subs")
		last = r.stdout
		return holder.MatchString(r.stdout)
	}, time.Minute, 50*time.Millisecond, "subs names the holder: %s", last)
	require.NoError(t, tx.Rollback(ctx))
	w.stop(t)
}

// TestWorkerCheckpointAhead: a worker whose checkpoint is ahead of the
// database (a restored dump) exits 1 and says which command moves it back,
// not a Go function.
func TestWorkerCheckpointAhead(t *testing.T) {
	t.Parallel()
	pool, schema := dbtest.Schema(t)
	u, err := url.Parse(dbtest.DatabaseURL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db := u.String()
	r := run(t, db, "", "migrate")
	require.Equal(t, 0, r.code, r.stderr)
	r = run(t, db, "", "append", "--type", "cat", "--id", "a", "--event", "E", "--data", `{}`)
	require.Equal(t, 0, r.code, r.stderr)
	startWorker(t, db, "dump").stop(t)
	_, err = pool.Exec(context.Background(), `UPDATE `+pgx.Identifier{schema}.Sanitize()+`.es_event_subscriptions
		SET last_transaction_id = (pg_current_xact_id()::text::bigint + 1000000000)::text::xid8 WHERE subscription_name = 'dump'`)
	require.NoError(t, err)
	r = run(t, db, "", "worker", "--name", "dump")
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stderr, "meowmx subs reset dump --to")
	require.NotContains(t, r.stderr, "ResetSubscription")
}
