package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxnats"
)

func (a *app) relayCmd() *cobra.Command {
	var url, retention string
	c := &meowmxnats.Config{StreamConfig: &jetstream.StreamConfig{}}
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Relay events into NATS JetStream, for consumers elsewhere",
		Long: `Relay the store's events into a NATS JetStream stream, for consumers on other
machines and in other languages. Each event is published to the subject
<prefix>.<aggregate type>.<aggregate id> (characters other than A-Z a-z 0-9 - _
are percent-encoded: "eu.west/7" becomes "eu%2Ewest%2F7"), its JSON payload as
the body, with the headers Meowmx-Event-Type, Meowmx-Version, Meowmx-Position,
Meowmx-Event-Id, Meowmx-Event-Uuid, Meowmx-Recorded-At and Meowmx-Metadata, and
Nats-Msg-Id "<prefix>:<event id>" so that JetStream drops what is sent again.

The relay is a durable subscription (--name): its checkpoint advances only
after JetStream acknowledged the events, so a restart goes on where it stopped.
When NATS or the database goes away it waits and goes on when they are back.
The stream (--stream) is created when missing, with the subjects <prefix>.>, a
de-duplication window of --duplicates and --retention; an existing stream is
used as it is, and the relay refuses to start when its subjects do not cover
the relay's. With --partitions P the relay is a consumer group: start it in
several processes and they share the streams, each stream relayed in order.
Ctrl-C stops it cleanly.`,
		Example: `  meowmx relay --nats nats://127.0.0.1:4222
  meowmx relay --nats nats://nats:4222 --subject-prefix shop --type order --type payment
  meowmx relay --nats nats://nats:4222 --name fanout --partitions 8`,
		Args:   cobra.NoArgs,
		PreRun: func(*cobra.Command, []string) { a.long = true },
		RunE: a.withBackend(openWrite, func(ctx context.Context, b *backend, _ []string) error {
			switch strings.ToLower(retention) {
			case "limits":
				c.StreamConfig.Retention = jetstream.LimitsPolicy
			case "interest":
				c.StreamConfig.Retention = jetstream.InterestPolicy
			case "workqueue":
				c.StreamConfig.Retention = jetstream.WorkQueuePolicy
			default:
				return usagef("--retention: %q is not limits, interest or workqueue", retention)
			}
			nc, err := nats.Connect(url, nats.Name("meowmx relay "+c.Name),
				// Nothing published while disconnected is sent after a
				// reconnect: the relay sends it again, in order.
				nats.ReconnectBufSize(-1),
				nats.MaxReconnects(-1), nats.ReconnectWait(time.Second), nats.RetryOnFailedConnect(true),
				nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
			if err != nil {
				return usagef("--nats: %v", err)
			}
			defer nc.Close()
			c.Logger = a.log
			fmt.Fprintf(a.out(), "relay %s: events to JetStream stream %s, subjects %s.<type>.<id>, on %s; Ctrl-C to stop\n",
				c.Name, c.Stream, c.SubjectPrefix, url)
			switch s := b.store.(type) {
			case *meowmx.Store[pgx.Tx]:
				err = meowmxnats.Run(ctx, s, nc, c)
			case *meowmx.Store[*sql.Tx]:
				err = meowmxnats.Run(ctx, s, nc, c)
			default:
				return fmt.Errorf("relay: unexpected store %T", b.store)
			}
			if errors.Is(err, meowmxnats.ErrStreamConfig) {
				return usageError{err}
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.StringVar(&url, "nats", nats.DefaultURL, "NATS server URL(s), comma-separated")
	f.StringVar(&c.SubjectPrefix, "subject-prefix", meowmxnats.SubjectPrefixDefault, "first token(s) of every subject")
	f.StringArrayVar(&c.AggregateTypes, "type", nil, "relay this aggregate type only (repeat for more)")
	f.StringVar(&c.Name, "name", meowmxnats.NameDefault, "name of the relay's subscription (its checkpoint)")
	f.IntVar(&c.Partitions, "partitions", 0, fmt.Sprintf("run as a member of a consumer group of this many partitions (2 to %d)", meowmx.MaxPartitions))
	f.StringVar(&c.Stream, "stream", meowmxnats.StreamDefault, "JetStream stream to publish to")
	f.DurationVar(&c.StreamConfig.Duplicates, "duplicates", meowmxnats.DuplicatesDefault, "de-duplication window of a stream the relay creates")
	f.StringVar(&retention, "retention", "limits", "retention of a stream the relay creates: limits, interest or workqueue")
	return a.withMetrics(cmd)
}
