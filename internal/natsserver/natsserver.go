// Package natsserver gives a test a nats-server with JetStream of its own,
// on a free 127.0.0.1 port with its store in the test's t.TempDir(), which
// the test may stop and start again without touching the server others
// share. The binary is nats-server on PATH, else /usr/sbin/nats-server or
// /usr/bin/nats-server (Debian: apt-get install nats-server); without it
// the test is skipped. The server is stopped when the test ends.
//
//	s := natsserver.Start(t)
//	nc, err := nats.Connect(s.URL())
//	...
//	s.Restart(t)
//
// The methods call t.Fatal and must be called from the test's goroutine.
package natsserver

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds the wait for the server to accept connections.
const readyTimeout = 30 * time.Second

// Server is a nats-server of one test.
type Server struct {
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed when cmd has exited
}

// Binary returns the path of nats-server, or "" when none is found.
func Binary() string {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start starts a server for t, stopped when t ends. It skips t when no
// nats-server binary is found.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("natsserver: no nats-server binary on PATH or in /usr/sbin; " +
			"install it (Debian/Ubuntu: apt-get install nats-server) to run this test")
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("natsserver: end of the server's log:\n%s", s.LogTail(30))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.kill()
	})
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		err := s.start()
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("natsserver: start: %v\n%s", err, s.LogTail(20))
		}
	}
}

// URL is the server's nats:// URL.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// StoreDir is the server's JetStream store directory.
func (s *Server) StoreDir() string { return filepath.Join(s.dir, "jetstream") }

// Stop shuts the server down (SIGTERM: it closes its connections and
// its store cleanly, as a restart by an operator does) and waits for it
// to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		t.Fatal("natsserver: Stop: not running")
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(readyTimeout):
	}
	s.kill()
}

// Start starts the server again after Stop, on the same port and store.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("natsserver: start: %v\n%s", err, s.LogTail(20))
	}
}

// Restart stops the server and starts it again.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
	_ = s.log.Close()
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("already running")
	}
	from := len(s.logText())
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.StoreDir(),
		"--http_port", "0", "-n", "meowmx-test")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return err
	}
	exited := make(chan struct{})
	s.cmd, s.log, s.exited = cmd, log, exited
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.logText()[from:], "Server is ready") {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			_ = log.Close()
			return fmt.Errorf("nats-server exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.kill()
	return fmt.Errorf("nats-server not ready after %s", readyTimeout)
}

func (s *Server) logText() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	return string(b)
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(s.logText(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natsserver: free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
