package meowmxnats_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/natsserver"
	"github.com/meowmx/meowmx/meowmxnats"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// testTimeout bounds each wait of these tests: a relay that does not
// catch up within it has failed.
const testTimeout = 60 * time.Second

// connect connects to a test's server as the relay should be connected.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.ReconnectBufSize(-1), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.RetryOnFailedConnect(true),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // not on stderr
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

func sqliteStore(t testing.TB) *meowmx.Store[*sql.Tx] {
	t.Helper()
	ctx := context.Background()
	driver, err := meowmxsqlite.Open(ctx, meowmxsqlite.Memory, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = driver.Close() })
	s, err := meowmx.NewStore(driver, &meowmx.Config{Logger: quietLogger()})
	require.NoError(t, err)
	_, err = s.Migrate(ctx, nil)
	require.NoError(t, err)
	return s
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(nopWriter{}, &slog.HandlerOptions{Level: slog.LevelError + 4}))
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// relayed is an event read back from JetStream.
type relayed struct {
	seq     uint64
	subject string
	header  nats.Header
	data    []byte
}

// readBack reads the whole stream with an ordered JetStream consumer, as a
// consumer in another service would.
func readBack(t testing.TB, js jetstream.JetStream, stream string) []relayed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	var out []relayed
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(int(min(info.State.Msgs-uint64(len(out)), 1000)), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		for m := range batch.Messages() {
			md, err := m.Metadata()
			require.NoError(t, err)
			out = append(out, relayed{seq: md.Sequence.Stream, subject: m.Subject(), header: m.Headers(), data: m.Data()})
		}
		require.NoError(t, batch.Error())
		require.NoError(t, ctx.Err())
	}
	return out
}

// requireRelayed checks that JetStream holds each event of want exactly
// once, with its subject, headers and payload, and the events of each
// stream in the order of their versions.
func requireRelayed(t testing.TB, prefix string, want []*meowmx.RecordedEvent, got []relayed) {
	t.Helper()
	byID := map[int64]*meowmx.RecordedEvent{}
	for _, ev := range want {
		byID[ev.Position.EventID] = ev
	}
	seen := map[int64]bool{}
	last := map[string]int64{} // stream: version of its last message
	for _, m := range got {
		id, err := strconv.ParseInt(m.header.Get(meowmxnats.HeaderEventID), 10, 64)
		require.NoError(t, err, "seq %d", m.seq)
		ev := byID[id]
		require.NotNil(t, ev, "seq %d: event %d was not written", m.seq, id)
		require.False(t, seen[id], "seq %d: event %d is in the stream twice", m.seq, id)
		seen[id] = true
		require.Equal(t, meowmxnats.Subject(prefix, ev.StreamID), m.subject)
		stream, err := meowmxnats.ParseSubject(prefix, m.subject)
		require.NoError(t, err)
		require.Equal(t, ev.StreamID, stream)
		require.Equal(t, prefix+":"+strconv.FormatInt(id, 10), m.header.Get(jetstream.MsgIDHeader))
		require.Equal(t, ev.Type, m.header.Get(meowmxnats.HeaderEventType))
		require.Equal(t, strconv.FormatInt(ev.Version, 10), m.header.Get(meowmxnats.HeaderVersion))
		require.Equal(t, ev.Position.String(), m.header.Get(meowmxnats.HeaderPosition))
		at, err := time.Parse(time.RFC3339Nano, m.header.Get(meowmxnats.HeaderRecordedAt))
		require.NoError(t, err)
		require.True(t, at.Equal(ev.RecordedAt), "recorded at %s, header %s", ev.RecordedAt, at)
		require.JSONEq(t, string(ev.Data), string(m.data))
		if prev, ok := last[ev.StreamID.ID]; ok {
			require.Equal(t, prev+1, ev.Version, "stream %s: version %d after %d", ev.StreamID, ev.Version, prev)
		} else {
			require.Equal(t, int64(0), ev.Version, "stream %s starts at version %d", ev.StreamID, ev.Version)
		}
		last[ev.StreamID.ID] = ev.Version
	}
	require.Len(t, seen, len(want), "events relayed")
}

func readAll[TTx any](t testing.TB, s *meowmx.Store[TTx]) []*meowmx.RecordedEvent {
	t.Helper()
	var evs []*meowmx.RecordedEvent
	for ev, err := range s.IterAll(context.Background(), nil) {
		require.NoError(t, err)
		evs = append(evs, ev)
	}
	return evs
}

// runRelay runs a relay until the test ends, and returns what it returned.
func runRelay[TTx any](t testing.TB, s *meowmx.Store[TTx], nc *nats.Conn, c *meowmxnats.Config) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- meowmxnats.Run(ctx, s, nc, c) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return done
}

func waitFor[TTx any](t testing.TB, s *meowmx.Store[TTx], name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, s.WaitForSubscription(ctx, name))
}

func TestRelay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natsserver.Start(t)
	nc := connect(t, srv.URL())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s := sqliteStore(t)

	// Ids and types that are not subject tokens, metadata, UUIDs.
	ids := []string{"plain-1", "eu.west/7", "chat noir", "*", ">", "50%", "ünïcode", "a\nb"}
	for i, id := range ids {
		typ := "cat"
		if i%2 == 1 {
			typ = "dog.v2"
		}
		for v := range 3 {
			_, err := s.Append(ctx, meowmx.StreamID{Type: typ, ID: id}, meowmx.AnyVersion, meowmx.EventData{
				Type: "Fed", Data: json.RawMessage(fmt.Sprintf(`{"n": %d}`, v)),
				Metadata: json.RawMessage("{\n  \"by\": \"ann\"\n}"), UUID: uuid.New()})
			require.NoError(t, err)
		}
	}
	c := &meowmxnats.Config{SubjectPrefix: "shop.test", Window: 4, BatchSize: 5, Logger: quietLogger()}
	runRelay(t, s, nc, c)
	waitFor(t, s, meowmxnats.NameDefault)
	want := readAll(t, s)
	got := readBack(t, js, meowmxnats.StreamDefault)
	requireRelayed(t, "shop.test", want, got)
	require.Equal(t, `{"by":"ann"}`, got[0].header.Get(meowmxnats.HeaderMetadata))
	require.Equal(t, want[0].UUID.String(), got[0].header.Get(meowmxnats.HeaderEventUUID))

	// The stream was created with the documented defaults.
	st, err := js.Stream(ctx, meowmxnats.StreamDefault)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	require.Equal(t, []string{"shop.test.>"}, cfg.Subjects)
	require.Equal(t, meowmxnats.DuplicatesDefault, cfg.Duplicates)
	require.Equal(t, jetstream.LimitsPolicy, cfg.Retention)

	// Events written while it runs follow.
	_, err = s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "plain-1"}, meowmx.AnyVersion,
		meowmx.EventData{Type: "Napped", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)
	waitFor(t, s, meowmxnats.NameDefault)
	requireRelayed(t, "shop.test", readAll(t, s), readBack(t, js, meowmxnats.StreamDefault))
}

func TestRelayTypeFilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natsserver.Start(t)
	nc := connect(t, srv.URL())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s := sqliteStore(t)
	for _, st := range []meowmx.StreamID{{Type: "cat", ID: "c1"}, {Type: "dog", ID: "d1"}, {Type: "cat", ID: "c2"}} {
		_, err := s.Append(ctx, st, meowmx.AnyVersion, meowmx.EventData{Type: "Born", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	runRelay(t, s, nc, &meowmxnats.Config{Name: "cats", AggregateTypes: []string{"cat"}, Stream: "CATS",
		StreamConfig: &jetstream.StreamConfig{Subjects: []string{"meowmx.cat.*"}, Duplicates: time.Minute}, Logger: quietLogger()})
	waitFor(t, s, "cats")
	cats, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{AggregateTypes: []string{"cat"}})
	require.NoError(t, err)
	requireRelayed(t, "meowmx", cats, readBack(t, js, "CATS"))
	st, err := js.Stream(ctx, "CATS")
	require.NoError(t, err)
	require.Equal(t, time.Minute, st.CachedInfo().Config.Duplicates)
}

func TestRelayRefusesStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natsserver.Start(t)
	nc := connect(t, srv.URL())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"meowmx.cat.*", "billing.>"}})
	require.NoError(t, err)
	s := sqliteStore(t)
	_, err = s.Append(ctx, meowmx.StreamID{Type: "dog", ID: "d1"}, meowmx.AnyVersion, meowmx.EventData{Type: "Born", Data: json.RawMessage(`{}`)})
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		c    *meowmxnats.Config
	}{
		{"SubjectsMissing", &meowmxnats.Config{Stream: "OTHER"}},                    // all types: meowmx.*.* not covered
		{"OtherPrefix", &meowmxnats.Config{Stream: "OTHER", SubjectPrefix: "shop"}}, // shop.*.*
		{"TypeMissing", &meowmxnats.Config{Stream: "OTHER", AggregateTypes: []string{"cat", "dog"}}},
		{"CreateOverlapping", &meowmxnats.Config{Stream: "NEW", AggregateTypes: []string{"cat"}}}, // meowmx.> overlaps OTHER
		{"CreateNotCovering", &meowmxnats.Config{Stream: "NEW2",
			StreamConfig: &jetstream.StreamConfig{Subjects: []string{"meowmx.bird.*"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Logger = quietLogger()
			err := meowmxnats.Run(ctx, s, nc, tc.c)
			require.ErrorIs(t, err, meowmxnats.ErrStreamConfig)
			var sce *meowmxnats.StreamConfigError
			require.ErrorAs(t, err, &sce)
		})
	}
	// A stream that covers the relay's subjects is used as it is.
	runRelay(t, s, nc, &meowmxnats.Config{Stream: "OTHER", AggregateTypes: []string{"cat"}, Logger: quietLogger()})
	waitFor(t, s, meowmxnats.NameDefault)
	info, err := js.Stream(ctx, "OTHER")
	require.NoError(t, err)
	require.Equal(t, []string{"meowmx.cat.*", "billing.>"}, info.CachedInfo().Config.Subjects)

}

// signal is a slog handler that closes a channel at the first record whose
// message contains a string.
type signal struct {
	slog.Handler
	substr string
	once   *sync.Once
	ch     chan struct{}
}

func newSignal(substr string) *signal {
	return &signal{Handler: quietLogger().Handler(), substr: substr, once: &sync.Once{}, ch: make(chan struct{})}
}

func (s *signal) Enabled(context.Context, slog.Level) bool { return true }

func (s *signal) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, s.substr) {
		s.once.Do(func() { close(s.ch) })
	}
	return nil
}

func (s *signal) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *signal) WithGroup(string) slog.Handler      { return s }

// TestRelayCheckpointWaitsForAck: JetStream refuses messages beyond the
// stream's limit of 5, and the relay's checkpoint stops exactly after the
// 5 it acknowledged; once the limit is lifted, the rest follows, each
// event in the stream once.
func TestRelayCheckpointWaitsForAck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natsserver.Start(t)
	nc := connect(t, srv.URL())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	sc := jetstream.StreamConfig{Name: meowmxnats.StreamDefault, Subjects: []string{"meowmx.>"},
		MaxMsgs: 5, Discard: jetstream.DiscardNew, Duplicates: time.Minute}
	_, err = js.CreateStream(ctx, sc)
	require.NoError(t, err)
	s := sqliteStore(t)
	for i := range 20 {
		_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: fmt.Sprint("c", i%3)}, meowmx.AnyVersion,
			meowmx.EventData{Type: "Fed", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	sig := newSignal("NATS failed")
	runRelay(t, s, nc, &meowmxnats.Config{Logger: slog.New(sig)})
	select {
	case <-sig.ch:
	case <-time.After(testTimeout):
		t.Fatal("the relay did not report JetStream's refusal")
	}
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	require.Equal(t, int64(15), subs[0].Lag, "the checkpoint is not after the 5 events acknowledged")

	sc.MaxMsgs = -1
	_, err = js.UpdateStream(ctx, sc)
	require.NoError(t, err)
	waitFor(t, s, meowmxnats.NameDefault)
	requireRelayed(t, "meowmx", readAll(t, s), readBack(t, js, meowmxnats.StreamDefault))
}

// TestRelayStartsWithoutNATS: a relay started while NATS is down waits
// for it, then relays everything.
func TestRelayStartsWithoutNATS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natsserver.Start(t)
	nc := connect(t, srv.URL())
	srv.Stop(t)
	s := sqliteStore(t)
	for i := range 20 {
		_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: fmt.Sprint("c", i%3)}, meowmx.AnyVersion,
			meowmx.EventData{Type: "Fed", Data: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	sig := newSignal("NATS failed")
	runRelay(t, s, nc, &meowmxnats.Config{Logger: slog.New(sig), AckTimeout: 500 * time.Millisecond})
	select {
	case <-sig.ch:
	case <-time.After(testTimeout):
		t.Fatal("the relay did not report the NATS failure")
	}
	srv.Start(t)
	waitFor(t, s, meowmxnats.NameDefault)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	requireRelayed(t, "meowmx", readAll(t, s), readBack(t, js, meowmxnats.StreamDefault))
}

// TestRelayStopsOnTooLarge: an event larger than the server's max_payload
// (1 MB by default) can never be published: Run stops and says so, its
// checkpoint right before the event.
func TestRelayStopsOnTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natsserver.Start(t)
	nc := connect(t, srv.URL())
	s := sqliteStore(t)
	big := `{"blob":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, data := range []string{`{}`, big, `{}`} {
		_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: "c"}, meowmx.AnyVersion,
			meowmx.EventData{Type: "Fed", Data: json.RawMessage(data)})
		require.NoError(t, err)
	}
	err := meowmxnats.Run(ctx, s, nc, &meowmxnats.Config{Logger: quietLogger()})
	require.ErrorIs(t, err, nats.ErrMaxPayload)
	require.ErrorIs(t, err, meowmx.ErrHandler)
	var pe *meowmxnats.PublishError
	require.ErrorAs(t, err, &pe)
	require.True(t, pe.Permanent)
	evs := readAll(t, s)
	require.Equal(t, evs[1].Position, pe.Position)
	subs, err := s.Subscriptions(ctx)
	require.NoError(t, err)
	require.Equal(t, evs[0].Position, subs[0].Position, "the checkpoint is right before the large event")
}
