package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meowmx/meowmx"
)

func (a *app) migrateCmd() *cobra.Command {
	var idType string
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the tables",
		Long: `Create the event store's tables, or bring them up to date. Safe to run again,
and from several processes at once. Tables made by the Python meowmx client are
adopted. --aggregate-id-type applies when the tables are first created.`,
		Example: `  meowmx migrate
  meowmx --db postgres://localhost:5432/app migrate --aggregate-id-type UUID`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			b, err := a.openFor(ctx, openMigrate)
			if err != nil {
				return err
			}
			defer b.close()
			res, err := b.Migrate(ctx, &meowmx.MigrateOpts{AggregateIDType: idType})
			if err != nil {
				return err
			}
			if len(res.Applied) == 0 {
				fmt.Fprintf(a.out(), "schema is up to date (version %d)\n", res.Version)
				return nil
			}
			fmt.Fprintf(a.out(), "applied migrations %v; schema version %d\n", res.Applied, res.Version)
			return nil
		},
	}
	c.Flags().StringVar(&idType, "aggregate-id-type", "", "aggregate id column type for new tables: TEXT, UUID or CHAR(n) (default TEXT)")
	return c
}

func (a *app) appendCmd() *cobra.Command {
	var typ, id, event, data, metadata, expected string
	c := &cobra.Command{
		Use:   "append",
		Short: "Append one event to a stream",
		Long: `Append one event to the stream --type/--id, checking the stream's version.

--expected-version is a version (the stream's last event), or any, no-stream or
exists. It is the version the stream is at before the append, not the Python
client's version argument, which is the new event's own version (one more):
Python's version=0 (a new stream) is --expected-version no-stream, and
Python's version=N is --expected-version N-1. When the stream is not at that version nothing is written and the exit
code is 3. Invalid JSON exits with 2, and nothing is written.`,
		Example: `  meowmx append --type cat --id blanco --event Adopted --data '{"name":"Blanco"}' --expected-version no-stream
  meowmx append --type cat --id blanco --event Fed --data '{"food":"tuna"}' --expected-version 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			exp, err := meowmx.ParseExpectedVersion(expected)
			if err != nil {
				return err
			}
			ev := meowmx.EventData{Type: event, Data: json.RawMessage(data)}
			if cmd.Flags().Changed("metadata") {
				ev.Metadata = json.RawMessage(metadata)
			}
			b, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer b.close()
			res, err := b.Append(ctx, meowmx.StreamID{Type: typ, ID: id}, exp, ev)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out(), "appended %s/%s version %d at position %s\n", typ, id, res.Version, res.Events[0].Position)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&typ, "type", "", "aggregate type (category), e.g. cat (required)")
	f.StringVar(&id, "id", "", "aggregate id (required)")
	f.StringVar(&event, "event", "", "event type, e.g. Fed (required)")
	f.StringVar(&data, "data", "", "event payload, JSON (required)")
	f.StringVar(&metadata, "metadata", "", "event metadata, JSON")
	f.StringVar(&expected, "expected-version", "any", "N, any, no-stream or exists")
	for _, name := range []string{"type", "id", "event", "data"} {
		_ = c.MarkFlagRequired(name)
	}
	return c
}

// printer writes events as the read flags ask.
type printer struct {
	w      io.Writer
	pretty bool
	json   bool
}

type jsonEvent struct {
	Position      meowmx.Position `json:"position"`
	AggregateType string          `json:"aggregate_type"`
	AggregateID   string          `json:"aggregate_id"`
	Version       int64           `json:"version"`
	EventType     string          `json:"event_type"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
	UUID          string          `json:"uuid,omitempty"`
	RecordedAt    *time.Time      `json:"recorded_at"` // null: never recorded (adopted events)
}

func (p *printer) print(ev *meowmx.RecordedEvent) error {
	if p.json {
		je := jsonEvent{
			Position: ev.Position, AggregateType: ev.StreamID.Type, AggregateID: ev.StreamID.ID,
			Version: ev.Version, EventType: ev.Type, Data: ev.Data, Metadata: ev.Metadata,
		}
		if !ev.RecordedAt.IsZero() {
			je.RecordedAt = &ev.RecordedAt
		}
		if ev.UUID != [16]byte{} {
			je.UUID = ev.UUID.String()
		}
		b, err := json.Marshal(je)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	data := []byte(ev.Data)
	if p.pretty {
		var buf bytes.Buffer
		if json.Indent(&buf, ev.Data, "    ", "  ") == nil {
			data = append([]byte("\n    "), buf.Bytes()...)
		}
	}
	_, err := fmt.Fprintf(p.w, "%-12s %s/%s v%d %s %s\n", ev.Position, ev.StreamID.Type, ev.StreamID.ID, ev.Version, ev.Type, data)
	return err
}

func (a *app) readCmd() *cobra.Command {
	var typ, id, from, to string
	var limit int
	var tail bool
	p := &printer{w: a.env.Stdout}
	c := &cobra.Command{
		Use:   "read",
		Short: "Read one stream, one category or all events",
		Long: `Read events: one stream with --id, one category with --type alone, or all.

For a stream, --from and --to are versions (inclusive). For a category or all
events they are positions (transaction_id:event_id, as printed): --from reads
after it, --to stops at it. A bare transaction id, as the Python client's
read-events example takes, means after (--from) or up to (--to) every event of
that transaction. --tail keeps watching for new events until Ctrl-C.`,
		Example: `  meowmx read --id blanco
  meowmx read --type cat --pretty
  meowmx read --json | jq .event_type
  meowmx read --type cat --tail`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if limit < 0 {
				return usagef("--limit %d is negative", limit)
			}
			a.long = tail
			b, err := a.openFor(ctx, openRead)
			if err != nil {
				return err
			}
			defer b.close()
			if id != "" {
				return a.readStream(ctx, b, p, typ, id, from, to, limit, tail)
			}
			return a.readAll(ctx, b, p, typ, from, to, limit, tail)
		},
	}
	f := c.Flags()
	f.StringVar(&typ, "type", "", "aggregate type (category)")
	f.StringVar(&id, "id", "", "aggregate id: read this stream")
	f.StringVar(&from, "from", "", "first version (stream) or position to read after (category, all)")
	f.StringVar(&to, "to", "", "last version (stream) or position (category, all)")
	f.IntVar(&limit, "limit", 0, "read at most this many events (0: no limit)")
	f.BoolVar(&tail, "tail", false, "keep watching for new events until Ctrl-C")
	f.BoolVar(&p.pretty, "pretty", false, "indent the JSON payloads")
	f.BoolVar(&p.json, "json", false, "print one JSON object per line (for jq)")
	return c
}

func parseVersionFlag(name, s string) (*int64, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return nil, usagef("--%s %s: want a version (0 or more) when reading a stream", name, short(s))
	}
	return &v, nil
}

func parsePositionFlag(name, s string) (*meowmx.Position, error) {
	if s == "" {
		return nil, nil
	}
	if tx, err := strconv.ParseUint(s, 10, 64); err == nil {
		// A bare transaction id, as the Python client's read-events
		// example takes: after (--from) or up to (--to) every event of
		// that transaction.
		return &meowmx.Position{TransactionID: tx, EventID: math.MaxInt64}, nil
	}
	p, err := meowmx.ParsePosition(s)
	if err != nil {
		return nil, usagef("--%s %s: want a position transaction_id:event_id, or a transaction id, when reading a category or all events", name, short(s))
	}
	return &p, nil
}

func (a *app) readStream(ctx context.Context, b *backend, p *printer, typ, id, from, to string, limit int, tail bool) error {
	fromV, err := parseVersionFlag("from", from)
	if err != nil {
		return err
	}
	toV, err := parseVersionFlag("to", to)
	if err != nil {
		return err
	}
	opts := &meowmx.ReadStreamOpts{To: toV, Limit: limit}
	if fromV != nil {
		opts.From = *fromV
	}
	if typ != "" {
		info, err := b.Stream(ctx, id)
		if err == nil && info.StreamID.Type != typ {
			return usagef("stream %q is of type %q, not %q", id, info.StreamID.Type, typ)
		}
	}
	opts.Follow = tail
	for ev, err := range b.IterStream(ctx, id, opts) {
		if err != nil {
			return err
		}
		if err := p.print(ev); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (a *app) readAll(ctx context.Context, b *backend, p *printer, typ, from, to string, limit int, tail bool) error {
	after, err := parsePositionFlag("from", from)
	if err != nil {
		return err
	}
	until, err := parsePositionFlag("to", to)
	if err != nil {
		return err
	}
	opts := &meowmx.ReadAllOpts{}
	if typ != "" {
		opts.AggregateTypes = []string{typ}
	}
	if after != nil {
		opts.After = *after
	}
	opts.Follow = tail
	// A one-shot read shows what was committed before it, also behind a
	// transaction that was still open then (PostgreSQL's commit horizon).
	opts.AwaitOlder = 5 * time.Second
	n := 0
	for ev, err := range b.IterAll(ctx, opts) {
		if err != nil {
			return err
		}
		if until != nil && ev.Position.Compare(*until) > 0 {
			return nil
		}
		if err := p.print(ev); err != nil {
			return err
		}
		if n++; limit > 0 && n >= limit {
			return nil
		}
	}
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (a *app) subCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sub",
		Short: "Watch all events as they happen",
		Long:  `Print every event appended from now on, until Ctrl-C.`,
		Example: `  meowmx sub          # in one terminal
  meowmx update-cat blanco   # in another`,
		Args:   cobra.NoArgs,
		PreRun: func(*cobra.Command, []string) { a.long = true },
		RunE: a.withBackend(openRead, func(ctx context.Context, b *backend, _ []string) error {
			head, err := headPosition(ctx, b)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out(), "watching all events; Ctrl-C to stop")
			p := &printer{w: a.env.Stdout, pretty: true}
			return a.readAll(ctx, b, p, "", head.String(), "", 0, true)
		}),
	}
}

// headPosition returns the position of the last event that can be read.
func headPosition(ctx context.Context, b *backend) (meowmx.Position, error) {
	var head meowmx.Position
	for ev, err := range b.IterAll(ctx, nil) {
		if err != nil {
			return head, err
		}
		head = ev.Position
	}
	return head, nil
}

func (a *app) updateCatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "update-cat NAME",
		Short: "Load a cat, wait for Enter, then save a new event at the loaded version",
		Long: `Load the cat stream NAME and show it, wait for Enter, then append an event at
the version that was loaded.

Run it in two terminals and press Enter in one, then in the other: the second
fails with an optimistic-concurrency conflict (exit code 3), because the cat
changed after it was loaded.`,
		Example: `  meowmx update-cat blanco`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			b, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer b.close()
			events, err := b.ReadStream(ctx, name, nil)
			if err != nil {
				return err
			}
			version := meowmx.NoStream
			if len(events) > 0 {
				if t := events[0].StreamID.Type; t != "cat" {
					return usagef("stream %q is a %s, not a cat", name, t)
				}
				version = meowmx.Exact(events[len(events)-1].Version)
			}
			c := catFromEvents(name, events)
			fmt.Fprint(a.out(), c.String())
			fmt.Fprintf(a.out(), "loaded %s at version %s; press Enter to save a new event...\n", name, version)
			if _, err := bufio.NewReader(a.env.Stdin).ReadString('\n'); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			ev := c.next()
			res, err := b.Append(ctx, meowmx.StreamID{Type: "cat", ID: name}, version, ev)
			if err != nil {
				var ce *meowmx.ConcurrencyError
				if errors.As(err, &ce) {
					return withMessage(err, fmt.Sprintf("conflict: %s changed after it was loaded (loaded at version %s, now at %d); run again to reload",
						name, version, ce.Actual))
				}
				return err
			}
			fmt.Fprintf(a.out(), "saved %s %s at version %d\n", name, ev.Type, res.Version)
			return nil
		},
	}
}

func trimJSON(b []byte) string { return strings.TrimSpace(string(b)) }
