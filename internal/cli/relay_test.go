package cli_test

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx/internal/natsserver"
)

func TestRelay(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testRelay(t, db)
		})
	}
}

func testRelay(t *testing.T, db string) {
	srv := natsserver.Start(t)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	for _, a := range [][]string{{"cat", "a"}, {"cat", "b.x"}, {"dog", "c"}} {
		r := run(t, db, "", "append", "--type", a[0], "--id", a[1], "--event", "Adopted", "--data", `{}`)
		require.Equal(t, 0, r.code, r.stderr)
	}

	cmd := exec.Command(binary, "--db", db, "relay", "--nats", srv.URL(), "--subject-prefix", "shop", "--type", "cat",
		"--name", "cats", "--duplicates", "1m")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // when an assertion fails first
	ctx := context.Background()
	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, "MEOWMX")
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 2
	}, 90*time.Second, 50*time.Millisecond, "the relay did not publish the cats: %s", &out) // the shared server's horizon may be held back
	s, err := js.Stream(ctx, "MEOWMX")
	require.NoError(t, err)
	require.Equal(t, []string{"shop.>"}, s.CachedInfo().Config.Subjects)
	require.Equal(t, time.Minute, s.CachedInfo().Config.Duplicates)
	for seq, subject := range map[uint64]string{1: "shop.cat.a", 2: "shop.cat.b%2Ex"} {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		require.Equal(t, subject, m.Subject)
		require.Equal(t, "Adopted", m.Header.Get("Meowmx-Event-Type"))
	}
	// The checkpoint commits right after the acknowledgements.
	require.Eventually(t, func() bool {
		return regexp.MustCompile(`cats\s+\S+\s+0\s`).MatchString(run(t, db, "", "subs").stdout)
	}, 90*time.Second, 50*time.Millisecond, "its checkpoint is not after the cats")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "the relay stops cleanly on Ctrl-C: %s", &out)

	// A stream whose subjects do not cover the relay's is refused.
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"billing.>"}})
	require.NoError(t, err)
	r := run(t, db, "", "relay", "--nats", srv.URL(), "--stream", "OTHER")
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, `none of its subjects covers "meowmx.*.*"`)
	r = run(t, db, "", "relay", "--nats", srv.URL(), "--retention", "forever")
	require.Equal(t, 2, r.code, r.stderr)
}
