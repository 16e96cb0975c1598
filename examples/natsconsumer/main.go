// Command natsconsumer is another service reading meowmx events from NATS
// JetStream, where `meowmx relay` (or meowmxnats.Run) publishes them. It
// reads them with a durable JetStream consumer, so a restart goes on after
// the last message it acknowledged, and prints each event.
//
//	meowmx relay --nats nats://127.0.0.1:4222 &          # the relay, beside the store
//	go run ./examples/natsconsumer -nats nats://127.0.0.1:4222 -type cat
//	meowmx append --type cat --id blanco --event Fed --data '{"food":"tuna"}'
//
// It needs nothing of meowmx but the subject encoding and the header
// names (meowmxnats.ParseSubject, meowmxnats.Header*): a consumer in
// another language reads the same subjects and headers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meowmx/meowmx/meowmxnats"
)

// config is what the command line says.
type config struct {
	url, stream, prefix, typ, durable string
}

func main() {
	var c config
	flag.StringVar(&c.url, "nats", nats.DefaultURL, "NATS server URL")
	flag.StringVar(&c.stream, "stream", meowmxnats.StreamDefault, "JetStream stream the relay publishes to")
	flag.StringVar(&c.prefix, "subject-prefix", meowmxnats.SubjectPrefixDefault, "the relay's subject prefix")
	flag.StringVar(&c.typ, "type", "", "read the events of this aggregate type only (default all)")
	flag.StringVar(&c.durable, "durable", "natsconsumer", "name of the durable consumer (its position in the stream)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, os.Stdout, -1); err != nil {
		fmt.Fprintln(os.Stderr, "natsconsumer:", err)
		os.Exit(1)
	}
}

// run prints the events of the stream until ctx ends, or until it has
// printed limit of them (when limit >= 0).
func run(ctx context.Context, c config, out io.Writer, limit int) error {
	nc, err := nats.Connect(c.url, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	filter := c.prefix + ".>" // all the relay's events
	if c.typ != "" {
		filter = c.prefix + "." + meowmxnats.EncodeToken(c.typ) + ".*"
	}
	// A durable consumer: JetStream remembers what it acknowledged, across
	// restarts of this service. Several instances sharing the name share
	// the work.
	cons, err := js.CreateOrUpdateConsumer(ctx, c.stream, jetstream.ConsumerConfig{
		Durable: c.durable, FilterSubject: filter, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("no stream %s: is the relay running? (meowmx relay --nats %s): %w", c.stream, c.url, err)
	}
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", c.durable, c.stream, err)
	}
	// The relay sends each event once within the stream's de-duplication
	// window; after a longer outage an event can come twice. Event ids
	// increase within a stream: skip what is not after the last one seen.
	// (A real service keeps this beside its own state, in its database.)
	last := map[string]int64{}
	printed := 0
	msgs, err := cons.Messages()
	if err != nil {
		return err
	}
	defer msgs.Stop()
	go func() { <-ctx.Done(); msgs.Stop() }()
	for limit < 0 || printed < limit {
		m, err := msgs.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		stream, err := meowmxnats.ParseSubject(c.prefix, m.Subject())
		if err != nil {
			_ = m.Term() // not the relay's: never redeliver it
			continue
		}
		h := m.Headers()
		id, _ := strconv.ParseInt(h.Get(meowmxnats.HeaderEventID), 10, 64)
		if id <= last[stream.String()] {
			_ = m.Ack() // seen already
			continue
		}
		fmt.Fprintf(out, "%s v%s %s %s at %s\n", stream, h.Get(meowmxnats.HeaderVersion),
			h.Get(meowmxnats.HeaderEventType), m.Data(), h.Get(meowmxnats.HeaderRecordedAt))
		// Ack once the event is handled: unacknowledged, it comes again.
		if err := m.DoubleAck(ctx); err != nil {
			return err
		}
		last[stream.String()] = id
		printed++
	}
	return nil
}
