package meowmxnats

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/natsserver"
	"github.com/meowmx/meowmx/internal/pgcluster"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// Relay benchmarks, against a PostgreSQL server and a nats-server of
// their own (file storage in a temporary directory). Run them with
//
//	go test -run '^$' -bench 'Relay' -benchtime 1x ./meowmxnats/
//
// MEOWMX_BENCH_EVENTS sets the backlog (default 200 000).

// benchStores returns n stores on one pool of a PostgreSQL server of the
// benchmark's own (internal/pgcluster: fsync off), migrated: a server
// shared with other work has its commit horizon held back by their
// transactions, which a subscription waits for.
func benchStores(b *testing.B, n int) []*meowmx.Store[pgx.Tx] {
	b.Helper()
	c := pgcluster.Start(b)
	pool, err := pgxpool.New(context.Background(), c.URL())
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	out := make([]*meowmx.Store[pgx.Tx], n)
	for i := range out {
		d, err := meowmxpgx.New(pool, nil)
		require.NoError(b, err)
		out[i], err = meowmx.NewStore(d, nil)
		require.NoError(b, err)
	}
	_, err = out[0].Migrate(context.Background(), nil)
	require.NoError(b, err)
	return out
}

func benchConn(b *testing.B, url string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url, nats.ReconnectBufSize(-1))
	require.NoError(b, err)
	b.Cleanup(nc.Close)
	return nc
}

// BenchmarkRelayBacklog relays a backlog (1 000 streams of 200 events,
// payload of about 50 bytes) from PostgreSQL to a new JetStream stream,
// beside a bare nats.go loop that async-publishes the same messages,
// built beforehand, to another new stream (nats.go's own window of 1 000
// pending acknowledgements, then PublishAsyncComplete), and reports both
// rates and their ratio. The relay's time runs from Run to its
// subscription caught up: its start, reading the events, publishing them
// and committing its checkpoints.
func BenchmarkRelayBacklog(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("MEOWMX_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	s := benchStores(b, 1)[0]
	srv := natsserver.Start(b)
	nc := benchConn(b, srv.URL())
	perStream := 200
	for i := range n / perStream {
		evs := make([]meowmx.EventData, perStream)
		for v := range evs {
			evs[v] = meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{"n": 1, "text": "some payload of a typical size"}`)}
		}
		_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: fmt.Sprintf("cat-%d", i)}, meowmx.NoStream, evs...)
		require.NoError(b, err)
	}
	var events []*meowmx.RecordedEvent
	for ev, err := range s.IterAll(ctx, nil) {
		require.NoError(b, err)
		events = append(events, ev)
	}
	require.Len(b, events, n/perStream*perStream)
	n = len(events)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(WindowDefault))
	require.NoError(b, err)
	newStream := func(name, prefix string) {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, Duplicates: DuplicatesDefault})
		require.NoError(b, err)
	}
	count := func(name string) uint64 {
		st, err := js.Stream(ctx, name)
		require.NoError(b, err)
		info, err := st.Info(ctx)
		require.NoError(b, err)
		return info.State.Msgs
	}
	var bare, relayed time.Duration
	for i := 0; b.Loop(); i++ {
		// The bare loop.
		prefix, name := fmt.Sprintf("bare%d", i), fmt.Sprintf("BARE%d", i)
		newStream(name, prefix)
		r := &relay{c: &Config{SubjectPrefix: prefix}}
		msgs := make([]*nats.Msg, len(events))
		for j, ev := range events {
			msgs[j] = r.message(ev)
		}
		start := time.Now()
		for _, m := range msgs {
			_, err := js.PublishMsgAsync(m, jetstream.WithStallWait(AckTimeoutDefault)) // as the relay waits
			require.NoError(b, err)
		}
		<-js.PublishAsyncComplete()
		bare += time.Since(start)
		require.Equal(b, uint64(n), count(name))
		require.NoError(b, js.DeleteStream(ctx, name))

		// The relay.
		prefix, name = fmt.Sprintf("relay%d", i), fmt.Sprintf("RELAY%d", i)
		sub := fmt.Sprintf("bench%d", i)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		start = time.Now()
		go func() { done <- Run(rctx, s, nc, &Config{Name: sub, SubjectPrefix: prefix, Stream: name}) }()
		require.NoError(b, s.WaitForSubscription(ctx, sub))
		relayed += time.Since(start)
		cancel()
		require.NoError(b, <-done)
		require.Equal(b, uint64(n), count(name))
		require.NoError(b, js.DeleteStream(ctx, name))
	}
	bareRate := float64(n*b.N) / bare.Seconds()
	relayRate := float64(n*b.N) / relayed.Seconds()
	b.ReportMetric(bareRate, "bare-events/s")
	b.ReportMetric(relayRate, "relay-events/s")
	b.ReportMetric(relayRate/bareRate, "ratio")
}

// BenchmarkRelayLatency measures the delay from an append's commit
// (Append has returned) to the event's arrival at a JetStream consumer,
// one event at a time: "relay" through a relay on another store (as in
// another process: the relay is woken by NOTIFY), "direct" with the
// writer publishing the event itself, synchronously, after its commit,
// the floor of any relay.
func BenchmarkRelayLatency(b *testing.B) {
	for _, mode := range []string{"relay", "direct"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			stores := benchStores(b, 2)
			s, relayStore := stores[0], stores[1] // the writer's store and the relay's
			srv := natsserver.Start(b)
			nc := benchConn(b, srv.URL())
			js, err := jetstream.New(nc)
			require.NoError(b, err)
			if mode == "relay" {
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- Run(rctx, relayStore, nc, &Config{Logger: slog.New(slog.DiscardHandler)}) }()
				defer func() { cancel(); <-done }()
			} else {
				_, err := js.CreateStream(ctx, (&Config{SubjectPrefix: SubjectPrefixDefault, Stream: StreamDefault}).streamConfig())
				require.NoError(b, err)
			}
			var st jetstream.Stream
			require.Eventually(b, func() bool { st, err = js.Stream(ctx, StreamDefault); return err == nil }, 30*time.Second, 10*time.Millisecond)
			cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
			require.NoError(b, err)
			got := make(chan time.Time, 1)
			cc, err := cons.Consume(func(m jetstream.Msg) { got <- time.Now() })
			require.NoError(b, err)
			defer cc.Stop()
			r := &relay{c: &Config{SubjectPrefix: SubjectPrefixDefault}}
			var lat []time.Duration
			data := meowmx.EventData{Type: "Ping", Data: json.RawMessage(`{}`)}
			stream := meowmx.StreamID{Type: "ping", ID: "p"}
			for b.Loop() {
				res, err := s.Append(ctx, stream, meowmx.AnyVersion, data)
				committed := time.Now()
				require.NoError(b, err)
				if mode == "direct" {
					ev := &meowmx.RecordedEvent{StreamID: stream, Type: data.Type, Data: data.Data, Version: res.Events[0].Version,
						Position: res.Events[0].Position, RecordedAt: res.Events[0].RecordedAt}
					_, err := js.PublishMsg(ctx, r.message(ev))
					require.NoError(b, err)
				}
				lat = append(lat, (<-got).Sub(committed))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
