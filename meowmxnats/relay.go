package meowmxnats

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meowmx/meowmx"
)

// Headers of every message the relay publishes. The body is the event's
// JSON payload, byte for byte.
const (
	// HeaderEventType holds the event type ("OrderPlaced").
	HeaderEventType = "Meowmx-Event-Type"
	// HeaderVersion holds the event's version in its stream, in decimal.
	HeaderVersion = "Meowmx-Version"
	// HeaderPosition holds the event's global position,
	// "<transaction id>:<event id>" (meowmx.ParsePosition reads it).
	HeaderPosition = "Meowmx-Position"
	// HeaderEventID holds the event's id in the store (the es_events id),
	// in decimal: unique in the store, and increasing within a stream.
	HeaderEventID = "Meowmx-Event-Id"
	// HeaderEventUUID holds the event's UUID, when it was appended with
	// one.
	HeaderEventUUID = "Meowmx-Event-Uuid"
	// HeaderRecordedAt holds when the event was written, RFC 3339 with
	// nanoseconds, in UTC.
	HeaderRecordedAt = "Meowmx-Recorded-At"
	// HeaderMetadata holds the event's JSON metadata, compacted onto one
	// line; absent when it has none.
	HeaderMetadata = "Meowmx-Metadata"
)

// Defaults of Config.
const (
	// NameDefault is the default of Config.Name.
	NameDefault = "nats-relay"
	// SubjectPrefixDefault is the default of Config.SubjectPrefix.
	SubjectPrefixDefault = "meowmx"
	// StreamDefault is the default of Config.Stream.
	StreamDefault = "MEOWMX"
	// DuplicatesDefault is the duplicate (de-duplication) window of a
	// stream the relay creates, unless Config.StreamConfig says otherwise:
	// JetStream's own default.
	DuplicatesDefault = 2 * time.Minute
	// BatchSizeDefault is the default of Config.BatchSize.
	BatchSizeDefault = 1000
	// WindowDefault is the default of Config.Window.
	WindowDefault = 1000
	// AckTimeoutDefault is the default of Config.AckTimeout.
	AckTimeoutDefault = 5 * time.Second
	// RetryBackoffMax caps the relay's wait between two attempts after
	// NATS failed.
	RetryBackoffMax = 5 * time.Second
)

var (
	// ErrBadSubject is returned by DecodeToken and ParseSubject for a
	// subject or token the relay cannot have written.
	ErrBadSubject = errors.New("meowmxnats: not a subject of the relay")
	// ErrStreamConfig matches every *StreamConfigError.
	ErrStreamConfig = errors.New("meowmxnats: the JetStream stream cannot hold the relay's messages")
	// ErrPublish matches every *PublishError.
	ErrPublish = errors.New("meowmxnats: publish to JetStream failed")
)

// StreamConfigError reports an existing JetStream stream that cannot take
// the relay's messages: its subjects do not cover the relay's, or it
// acknowledges nothing (NoAck). Run returns it at once; nothing is
// published.
type StreamConfigError struct {
	Stream string
	// Subjects are the stream's subjects.
	Subjects []string
	// Need is the relay's subject filter that they do not cover, or "".
	Need   string
	Reason string
}

// Error implements the error interface.
func (e *StreamConfigError) Error() string {
	return fmt.Sprintf("meowmxnats: JetStream stream %q (subjects %q) cannot hold the relay's messages: %s", e.Stream, e.Subjects, e.Reason)
}

// Is makes errors.Is(err, ErrStreamConfig) true.
func (e *StreamConfigError) Is(target error) bool { return target == ErrStreamConfig }

// PublishError reports an event that JetStream did not acknowledge. The
// relay's checkpoint stays before it; Run retries it (and the events after
// it) itself, so it reaches the caller only through logs, unless it is
// Permanent.
type PublishError struct {
	Subject  string
	Position meowmx.Position
	Err      error
	// Permanent is set when publishing the event again cannot succeed: it
	// is larger than the server's max_payload (nats.ErrMaxPayload), or
	// its subject is too long for the server (nats.ErrBadSubject). Run
	// then stops, returning this error inside a *meowmx.HandlerError; the
	// checkpoint stays before the event. Raise max_payload, or move the
	// relay past the event with Store.ResetSubscription.
	Permanent bool
}

// Error implements the error interface.
func (e *PublishError) Error() string {
	return fmt.Sprintf("meowmxnats: publish of event %s to %s: %v", e.Position, e.Subject, e.Err)
}

// Is makes errors.Is(err, ErrPublish) true.
func (e *PublishError) Is(target error) bool { return target == ErrPublish }

// Unwrap returns the NATS error.
func (e *PublishError) Unwrap() error { return e.Err }

// Config configures Run. Every field's zero value means its default.
type Config struct {
	// Name is the name of the relay's durable subscription (its
	// checkpoint). Defaults to NameDefault. Relays of different
	// filters or targets need different names.
	Name string
	// SubjectPrefix starts every subject: events go to
	// <SubjectPrefix>.<aggregate type>.<aggregate id> (see Subject). One
	// or more dot-separated tokens without wildcards. Defaults to
	// SubjectPrefixDefault.
	SubjectPrefix string
	// AggregateTypes, when not empty, relays the events of these
	// aggregate types only.
	AggregateTypes []string
	// EventTypes, when not empty, relays the events of these types only.
	EventTypes []string
	// StartFrom says where a new relay starts. Defaults to the first
	// event.
	StartFrom meowmx.StartFrom
	// Partitions, above 1, runs the relay as a consumer group of that many
	// partitions (meowmx.SubscriptionConfig.Partitions): every Run with
	// this Name, in any process, takes a share, and each stream is relayed
	// by one of them at a time, in order. Fixed when the subscription is
	// created. Defaults to 0: one Run relays everything, the others stand
	// by.
	Partitions int

	// Stream is the JetStream stream the relay publishes to. When it is
	// missing the relay creates it from StreamConfig; when it exists its
	// configuration is kept, and the relay refuses to start (a
	// *StreamConfigError) when its subjects do not cover the relay's.
	// Defaults to StreamDefault.
	Stream string
	// StreamConfig is the configuration of the stream the relay creates
	// when it is missing; nil means the defaults. Its Name is Stream.
	// Empty Subjects default to "<SubjectPrefix>.>", a zero Duplicates to
	// DuplicatesDefault; the rest is JetStream's default (limits
	// retention, file storage, one replica, kept forever).
	StreamConfig *jetstream.StreamConfig

	// BatchSize is how many events are read, published and checkpointed
	// together: the checkpoint advances, in one transaction, once
	// JetStream acknowledged all of them. Defaults to BatchSizeDefault.
	BatchSize int
	// Window is how many publishes may wait for JetStream's
	// acknowledgement at once, per partition. Defaults to WindowDefault.
	Window int
	// AckTimeout is how long a publish waits for its acknowledgement
	// before it counts as failed. Defaults to AckTimeoutDefault.
	AckTimeout time.Duration
	// PollInterval is the subscription's PollInterval: the first wait
	// for new events when no notification comes. Defaults to
	// meowmx.PollIntervalDefault.
	PollInterval time.Duration

	// Logger receives the relay's logs. Defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) withDefaults() (*Config, error) {
	out := Config{}
	if c != nil {
		out = *c
	}
	out.Name = cmp.Or(out.Name, NameDefault)
	out.SubjectPrefix = cmp.Or(out.SubjectPrefix, SubjectPrefixDefault)
	out.Stream = cmp.Or(out.Stream, StreamDefault)
	out.BatchSize = cmp.Or(out.BatchSize, BatchSizeDefault)
	out.Window = cmp.Or(out.Window, WindowDefault)
	out.AckTimeout = cmp.Or(out.AckTimeout, AckTimeoutDefault)
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	bad := func(arg, reason string) error {
		return &meowmx.ArgumentError{Arg: "meowmxnats.Config." + arg, Reason: reason}
	}
	if r := checkPrefix(out.SubjectPrefix); r != "" {
		return nil, bad("SubjectPrefix", r)
	}
	switch {
	case out.BatchSize < 0:
		return nil, bad("BatchSize", "negative")
	case out.Window < 0:
		return nil, bad("Window", "negative")
	case out.AckTimeout < 0:
		return nil, bad("AckTimeout", "negative")
	}
	return &out, nil
}

// Run relays the events of store to JetStream through nc until ctx ends,
// then returns nil. It is a durable subscription of store
// (Config.Name): each event is published to
// <SubjectPrefix>.<aggregate type>.<aggregate id> with the Header*
// headers and Nats-Msg-Id "<SubjectPrefix>:<event id>", so JetStream
// drops an event sent again within the stream's duplicate window (the
// prefix keeps two stores that share a stream apart). The checkpoint
// advances, a batch at a time, only once JetStream acknowledged every
// event of the batch: after a crash, the unacknowledged tail is sent
// again. Publishes are pipelined, up to Config.Window awaiting their
// acknowledgement.
//
// The events of a stream reach JetStream in their order. The relay stops
// publishing at the first sign of a lost connection (a disconnect, a
// reconnect, a publish that failed) and starts again, after the
// acknowledged events, once NATS is back, so a later event is not stored
// before an earlier one that was lost; should JetStream itself refuse an
// event and store a later one of its stream (a cluster's stream leader
// changing between the two, say), the relay logs the broken order as an
// error. Give it a connection made with
// nats.ReconnectBufSize(-1): a reconnect buffer sends, after a reconnect,
// what was published while disconnected, ahead of what the relay sends
// again (Run logs a warning otherwise). Retries are
// JetStream-de-duplicated, so they are not repeated in the stream within
// its duplicate window; after a longer outage of the database than that
// window, the events acknowledged but not checkpointed can appear twice:
// consumers that must not see an event twice skip a Meowmx-Event-Id they
// have seen for its stream (ids increase within a stream).
//
// NATS failures (the server down, restarting, or slow to acknowledge)
// and database failures are logged and retried with back-off: a NATS
// failure ends the subscription's run, which the store logs as a
// subscription (or consumer group) stopped, and Run starts it again, up to
// RetryBackoffMax later; the lease is released meanwhile, so a relay
// standing by in another process may take over. Run
// returns a *StreamConfigError when the stream exists but cannot hold the
// relay's subjects, a *meowmx.HandlerError wrapping a Permanent
// *PublishError for an event that NATS can never take (larger than its
// max_payload), an error matching meowmx.ErrInvalidArgument for a
// bad config, and RunSubscription's other errors.
func Run[TTx any](ctx context.Context, store *meowmx.Store[TTx], nc *nats.Conn, config *Config) error {
	c, err := config.withDefaults()
	if err != nil {
		return err
	}
	log := c.Logger.With("relay", c.Name, "stream", c.Stream)
	if nc.Opts.ReconnectBufSize >= 0 {
		log.WarnContext(ctx, "meowmxnats: the NATS connection has a reconnect buffer; "+
			"connect with nats.ReconnectBufSize(-1) so that an event lost in a reconnect is not stored after a later one")
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(c.Window*max(1, c.Partitions)+1),
		jetstream.WithPublishAsyncTimeout(c.AckTimeout))
	if err != nil {
		return fmt.Errorf("meowmxnats: %w", err)
	}
	r := &relay{c: c, nc: nc, js: js, log: log}
	sub := &meowmx.SubscriptionConfig[TTx]{
		Name: c.Name, AggregateTypes: c.AggregateTypes, EventTypes: c.EventTypes, StartFrom: c.StartFrom,
		Partitions: c.Partitions, BatchSize: c.BatchSize, PollInterval: c.PollInterval,
		// A failed publish stops the subscription at once (the batch is
		// tried again one event at a time first); Run starts it again.
		MaxAttempts: 1, OnFailure: meowmx.FailureStop,
		BatchHandler: meowmx.BatchHandlerFunc[TTx](func(ctx context.Context, _ TTx, evs []*meowmx.RecordedEvent) error {
			return r.publish(ctx, evs)
		}),
	}
	const firstBackoff = 100 * time.Millisecond
	backoff := firstBackoff
	for ctx.Err() == nil {
		err := r.ensureStream(ctx)
		if err == nil {
			err = store.RunSubscription(ctx, sub)
		}
		var sce *StreamConfigError
		var pe *PublishError
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			return nil
		case errors.As(err, &sce):
			return err
		case errors.As(err, &pe) && pe.Permanent:
			return err
		case !errors.Is(err, ErrPublish) && !r.natsError(err):
			return err
		}
		if !r.failing.Swap(true) {
			backoff = firstBackoff // it had been working: a new outage
			log.WarnContext(ctx, "meowmxnats: NATS failed; the relay waits and starts again after the last acknowledged event",
				"err", err, "retry_in", backoff)
		} else {
			log.DebugContext(ctx, "meowmxnats: NATS still failing", "err", err, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, RetryBackoffMax)
	}
	return nil
}

// relay publishes a subscription's batches.
type relay struct {
	c   *Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
	// failing is set when NATS failed, until a batch is acknowledged.
	failing atomic.Bool
}

// natsError tells whether an error that ended ensureStream came from NATS
// (unreachable, JetStream not answering) rather than from the stream's
// configuration.
func (r *relay) natsError(err error) bool {
	var ne *natsFailure
	return errors.As(err, &ne)
}

// natsFailure wraps an error of NATS met while preparing the stream.
type natsFailure struct{ err error }

func (e *natsFailure) Error() string { return "meowmxnats: " + e.err.Error() }
func (e *natsFailure) Unwrap() error { return e.err }

// publish publishes evs in order, up to Window unacknowledged at once, and
// returns once all are acknowledged, or a *PublishError for the first that
// is not (after waiting for those in flight).
func (r *relay) publish(ctx context.Context, evs []*meowmx.RecordedEvent) error {
	reconnects := r.nc.Stats().Reconnects
	futs := make([]jetstream.PubAckFuture, 0, len(evs))
	acked := 0
	var failure error
	var failed map[string]bool // subjects of the publishes that failed
	wait := func() {
		f := futs[acked]
		select {
		case <-f.Ok():
			if failed[f.Msg().Subject] {
				// An earlier event of this stream failed and this one was
				// stored: sent again, the earlier one comes after it.
				r.log.ErrorContext(ctx, "meowmxnats: JetStream stored an event after an earlier one of its stream failed; "+
					"unless the earlier one was stored after all, the stream's order in JetStream is broken", "subject", f.Msg().Subject, "event", evs[acked].Position.String())
			}
		case err := <-f.Err():
			if failure == nil {
				failure = &PublishError{Subject: f.Msg().Subject, Position: evs[acked].Position, Err: err}
			}
			if failed == nil {
				failed = map[string]bool{}
			}
			failed[f.Msg().Subject] = true
		case <-ctx.Done():
			if failure == nil {
				failure = ctx.Err()
			}
		}
		acked++
	}
	for _, ev := range evs {
		if failure != nil {
			break
		}
		if r.nc.Stats().Reconnects != reconnects || !r.nc.IsConnected() {
			failure = &PublishError{Subject: Subject(r.c.SubjectPrefix, ev.StreamID), Position: ev.Position, Err: nats.ErrDisconnected}
			break
		}
		if len(futs)-acked >= r.c.Window {
			wait()
			if failure != nil {
				break
			}
		}
		f, err := r.js.PublishMsgAsync(r.message(ev), jetstream.WithRetryAttempts(0), jetstream.WithStallWait(r.c.AckTimeout))
		if err != nil {
			failure = &PublishError{Subject: Subject(r.c.SubjectPrefix, ev.StreamID), Position: ev.Position, Err: err,
				Permanent: errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject)}
			break
		}
		futs = append(futs, f)
	}
	for acked < len(futs) {
		wait()
	}
	if failure == nil && r.failing.CompareAndSwap(true, false) {
		r.log.InfoContext(ctx, "meowmxnats: JetStream acknowledges again; relaying")
	}
	return failure
}

// message is the message of one event.
func (r *relay) message(ev *meowmx.RecordedEvent) *nats.Msg {
	id := strconv.FormatInt(ev.Position.EventID, 10)
	h := nats.Header{
		jetstream.MsgIDHeader: {r.c.SubjectPrefix + ":" + id},
		HeaderEventType:       {ev.Type},
		HeaderVersion:         {strconv.FormatInt(ev.Version, 10)},
		HeaderPosition:        {ev.Position.String()},
		HeaderEventID:         {id},
		HeaderRecordedAt:      {ev.RecordedAt.UTC().Format(time.RFC3339Nano)},
	}
	if ev.UUID != ([16]byte{}) {
		h[HeaderEventUUID] = []string{ev.UUID.String()}
	}
	if len(ev.Metadata) > 0 && string(ev.Metadata) != "null" {
		h[HeaderMetadata] = []string{compact(ev.Metadata)}
	}
	return &nats.Msg{Subject: Subject(r.c.SubjectPrefix, ev.StreamID), Header: h, Data: ev.Data}
}

// compact returns JSON on one line, as a header value must be.
func compact(b json.RawMessage) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b) // the store checked it: not reached
	}
	return out.String()
}
