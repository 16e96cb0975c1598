// Package pgcluster gives a test a PostgreSQL server of its own, which it
// may restart, stop, or whose sessions it may terminate, without touching
// the server that other tests share.
//
// Start runs initdb into the test's t.TempDir() and starts the server with
// pg_ctl on a free 127.0.0.1 port, its unix socket in that directory,
// trust authentication for the superuser "postgres" and fsync off (nothing
// needs to survive a crash of the machine; what a server crash or an
// immediate shutdown must keep is still kept: the WAL is written to the
// operating system at each commit). The server is stopped when the test
// ends (pg_ctl stop -m immediate).
//
//	c := pgcluster.Start(t)
//	pool, err := pgxpool.New(ctx, c.URL())
//	...
//	c.Restart(t, "fast")
//
// The binaries are initdb and pg_ctl on PATH, or else those of the newest
// /usr/lib/postgresql/*/bin. Without them the test is skipped; when they are
// found but fail, the test fails. initdb refuses to run as root: a root
// test runs them as the OS user "postgres" (runuser -u postgres), adding
// that user (useradd --system) when it is missing.
//
// A cluster takes about two seconds to create and start: tests that use one
// should call t.Parallel. A test binary killed before its cleanups ran
// (a -timeout panic, SIGKILL) leaves its server running: stop it with
// pg_ctl -D <dir>/data stop. The methods call t.Fatal and must be called
// from the test's goroutine.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Shutdown modes of pg_ctl (its -m option), for Restart and Stop.
const (
	// Smart waits for every session to end.
	Smart = "smart"
	// Fast ends every session (each gets a FATAL 57P01 error) and shuts
	// down cleanly.
	Fast = "fast"
	// Immediate kills the server's processes: the next start runs crash
	// recovery.
	Immediate = "immediate"
)

// startTimeout bounds each pg_ctl command, and the wait for the server to
// accept connections after it.
const startTimeout = 60 * time.Second

// Cluster is a PostgreSQL server of one test. Its methods are safe for
// concurrent use but call t.Fatal: call them from the test's goroutine.
type Cluster struct {
	bin  string   // directory of initdb and pg_ctl
	dir  string   // the cluster's directory: data, server.log
	sock string   // unix socket directory
	as   []string // command prefix that runs as the server's OS user, if not this one
	uid  int      // of that user, when as is set
	gid  int
	port int

	mu      sync.Mutex
	running bool
}

// binDir finds the directory of initdb and pg_ctl: "" when there is none.
func binDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "pg_ctl")); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { // newest version first
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// Start creates and starts a cluster for t, and stops it when t ends. It
// skips t when no initdb can be found.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := binDir()
	if bin == "" {
		t.Skip("pgcluster: no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; " +
			"install them (Debian/Ubuntu: apt-get install postgresql) to run this test")
	}
	c := &Cluster{bin: bin, dir: t.TempDir()}
	c.sock = c.dir
	if len(c.sock)+len("/.s.PGSQL.65535") > 100 { // a unix socket's path is at most 107 bytes
		d, err := os.MkdirTemp("", "pgsock")
		if err != nil {
			t.Fatalf("pgcluster: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(d) })
		c.sock = d
	}
	if os.Geteuid() == 0 {
		c.asPostgres(t)
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("pgcluster: initdb (%s): %v\n%s", bin, err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgcluster: end of the server's log (%s):\n%s", c.logFile(), c.LogTail(40))
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.running {
			out, err := c.pgctl("stop", "-m", Immediate)
			if err != nil {
				t.Errorf("pgcluster: stop: %v\n%s", err, out)
			}
			c.running = false
		}
	})
	for attempt := 1; ; attempt++ {
		c.port = freePort(t)
		err := c.writeConfig()
		if err == nil {
			err = c.start()
		}
		if err == nil {
			break
		}
		// Another process may have taken the port since freePort.
		if attempt == 3 || !strings.Contains(c.LogTail(20), "already in use") {
			t.Fatalf("pgcluster: start: %v\n%s", err, c.LogTail(20))
		}
	}
	return c
}

// asPostgres makes the cluster's directories belong to the OS user
// "postgres", adding it when missing, and its commands run as that user.
func (c *Cluster) asPostgres(t testing.TB) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "postgres").CombinedOutput(); err != nil {
			t.Fatalf("pgcluster: running as root, and no OS user postgres to run initdb as: useradd: %v\n%s", err, out)
		}
		if u, err = user.Lookup("postgres"); err != nil {
			t.Fatalf("pgcluster: %v", err)
		}
	}
	c.uid, _ = strconv.Atoi(u.Uid)
	c.gid, _ = strconv.Atoi(u.Gid)
	for _, d := range []string{c.dir, c.sock} {
		if err := os.Chown(d, c.uid, c.gid); err != nil {
			t.Fatalf("pgcluster: %v", err)
		}
	}
	// t.TempDir's parent is private to root: postgres must traverse it.
	for _, d := range []string{filepath.Dir(c.dir), filepath.Dir(c.sock)} {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 && d != os.TempDir() {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatalf("pgcluster: %v", err)
			}
		}
	}
	c.as = []string{"runuser", "-u", "postgres", "--"}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgcluster: free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) data() string    { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "server.log") }

// writeConfig writes the server's settings into postgresql.auto.conf, so
// that every start and restart uses them.
func (c *Cluster) writeConfig() error {
	conf := fmt.Sprintf(`port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
shared_buffers = '32MB'
max_connections = 100
`, c.port, c.sock)
	path := filepath.Join(c.data(), "postgresql.auto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if c.as != nil { // the server reads it as postgres
		if err := os.Chown(path, c.uid, c.gid); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	return nil
}

// run runs a program of the cluster's binaries as the server's OS user
// and returns its output.
func (c *Cluster) run(program string, args ...string) ([]byte, error) {
	argv := append(slices.Clone(c.as), append([]string{filepath.Join(c.bin, program)}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// pgctl runs pg_ctl on the cluster, waiting for the command to complete.
func (c *Cluster) pgctl(args ...string) ([]byte, error) {
	args = append([]string{"-D", c.data(), "-l", c.logFile(), "-w", "-t", strconv.Itoa(int(startTimeout / time.Second))}, args...)
	return c.run("pg_ctl", args...)
}

// start starts the server and waits until it accepts connections. The
// caller holds c.mu or owns c alone.
func (c *Cluster) start() error {
	if out, err := c.pgctl("start"); err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start: %w\n%s", err, out)
	}
	c.running = true
	return c.waitReady()
}

// waitReady waits until the server accepts a connection.
func (c *Cluster) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL())
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: the server does not accept connections: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// URL returns the server's connection string, for the superuser postgres
// and the database postgres over TCP.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Port returns the server's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// SocketDir returns the directory of the server's unix socket.
func (c *Cluster) SocketDir() string { return c.sock }

func checkMode(t testing.TB, mode string) {
	t.Helper()
	switch mode {
	case Smart, Fast, Immediate:
	default:
		t.Fatalf("pgcluster: shutdown mode %q: want %q, %q or %q", mode, Smart, Fast, Immediate)
	}
}

// Restart restarts the server with pg_ctl restart -m mode (Fast or
// Immediate, or Smart, which waits for every session to end) and waits
// until it accepts connections again.
func (c *Cluster) Restart(t testing.TB, mode string) {
	t.Helper()
	checkMode(t, mode)
	c.mu.Lock()
	defer c.mu.Unlock()
	if out, err := c.pgctl("restart", "-m", mode); err != nil {
		t.Fatalf("pgcluster: pg_ctl restart -m %s: %v\n%s\n%s", mode, err, out, c.LogTail(20))
	}
	c.running = true
	if err := c.waitReady(); err != nil {
		t.Fatalf("%v\n%s", err, c.LogTail(20))
	}
}

// Stop stops the server with pg_ctl stop -m mode. Start starts it again:
// between the two, connections are refused.
func (c *Cluster) Stop(t testing.TB, mode string) {
	t.Helper()
	checkMode(t, mode)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		t.Fatal("pgcluster: Stop: the server is not running")
	}
	if out, err := c.pgctl("stop", "-m", mode); err != nil {
		t.Fatalf("pgcluster: pg_ctl stop -m %s: %v\n%s\n%s", mode, err, out, c.LogTail(20))
	}
	c.running = false
}

// Start starts the server again after Stop, and waits until it accepts
// connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		t.Fatal("pgcluster: Start: the server is running")
	}
	if err := c.start(); err != nil {
		t.Fatalf("%v\n%s", err, c.LogTail(20))
	}
}

// TerminateBackends terminates, with pg_terminate_backend, the client
// sessions whose application_name is applicationName, or every client
// session but its own when applicationName is "", and waits until they
// have ended. It returns how many it terminated.
func (c *Cluster) TerminateBackends(t testing.TB, applicationName string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatalf("pgcluster: terminate backends: %v", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	// Two statements: PostgreSQL evaluates a WHERE clause's conditions in
	// any order, so pg_terminate_backend may not come last in one.
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
		  AND ($1 = '' OR application_name = $1)`, applicationName)
	if err != nil {
		t.Fatalf("pgcluster: terminate backends: %v", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatalf("pgcluster: terminate backends: %v", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid`, pids); err != nil {
		t.Fatalf("pgcluster: terminate backends: %v", err)
	}
	for {
		var left int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)`, pids).Scan(&left); err != nil {
			t.Fatalf("pgcluster: terminate backends: %v", err)
		}
		if left == 0 {
			return len(pids)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pgcluster: terminate backends: %d of %d still running", left, len(pids))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// LogTail returns the last n lines of the server's log.
func (c *Cluster) LogTail(n int) string {
	b, err := os.ReadFile(c.logFile())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no server log)"
		}
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
