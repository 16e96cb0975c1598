package meowmx

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// PageSizeDefault is the default for Config.PageSize.
const PageSizeDefault = 1000

// NotifyIntervalDefault is the default for Config.NotifyInterval.
const NotifyIntervalDefault = 5 * time.Millisecond

// Config configures a Store. The zero value is valid; each field's comment
// gives its default.
type Config struct {
	// Logger receives the store's structured logs. Defaults to discarding
	// them.
	Logger *slog.Logger
	// PageSize is how many events one query reads when iterating over a
	// stream or over all events, and the limit of ReadAll when its opts give
	// none. Defaults to PageSizeDefault.
	PageSize int
	// GroupCommit configures how Store.Append shares transactions between
	// concurrent appends. The zero value turns it on with the defaults.
	GroupCommit GroupCommitConfig
	// NotifyInterval is the least time between two notifications that
	// Append sends to subscribers in other processes (PostgreSQL NOTIFY,
	// sent after the append's commit and coalesced). An append after a
	// quiet spell is announced at once; appends that commit within the
	// interval after a notification are announced together when it ends,
	// so subscribers in other processes are woken at most once per
	// interval and each append pays for a NOTIFY transaction only once per
	// interval. Defaults to NotifyIntervalDefault; -1 sends them back to
	// back (one in flight at a time).
	NotifyInterval time.Duration
	// TracerProvider receives the store's spans: one per append, page
	// read, handler call, park and replay (see the package documentation,
	// "Observability"). While it traces (the append's span is sampled),
	// appends store their span's context in the events' metadata, under
	// TraceParentKey, and the spans of the handlers, in any process, link
	// to it. Defaults to otel.GetTracerProvider(): the global provider,
	// a no-op until otel.SetTracerProvider is called, which costs the
	// store nothing.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the store's metrics: append latency by
	// outcome, events appended, group-commit batch sizes; per
	// subscription, events handled, handler latency, lag in events and in
	// seconds, events parked, retries; the horizon's age and whether the
	// notification listener is connected. Defaults to
	// otel.GetMeterProvider(): the global provider, a no-op until
	// otel.SetMeterProvider is called.
	MeterProvider metric.MeterProvider
}

// Group commit defaults and limits.
const (
	// GroupCommitMaxBatchDefault is the default for
	// GroupCommitConfig.MaxBatch.
	GroupCommitMaxBatchDefault = 64
	// GroupCommitMaxBatchMax is the largest GroupCommitConfig.MaxBatch.
	GroupCommitMaxBatchMax = 10000
	// GroupCommitWindowDefault is the default for GroupCommitConfig.Window:
	// no wait beyond the natural one.
	GroupCommitWindowDefault = time.Duration(0)
	// GroupCommitWindowMax is the longest GroupCommitConfig.Window.
	GroupCommitWindowMax = 10 * time.Millisecond
)

// GroupCommitConfig configures group commit: appends made through
// Store.Append by concurrent goroutines share one transaction, so they
// share its cost (a commit, a round trip). Each append keeps its own
// semantics: its events are atomic, its expected version is checked
// exactly, a conflict fails only that append. Appends through
// Store.AppendTx are never grouped.
//
// Batching is natural: an append on an idle store is sent at once, alone;
// appends that arrive while a batch is being committed wait for it and
// then go together, up to MaxBatch, in the next one (a second batch goes
// beside the first when the first has been in flight for 5ms). The zero
// value turns group commit on with the defaults.
type GroupCommitConfig struct {
	// Disabled turns group commit off: each Store.Append runs its own
	// transaction.
	Disabled bool
	// Window is how long a batch, once appends are already waiting (the
	// store is busy), waits for more before it is sent, unless it is full
	// first. A batch on an idle store never waits. A window trades latency
	// for fewer, larger transactions; between 0 and GroupCommitWindowMax.
	// Go's timers may fire up to a millisecond late when the process is
	// idle, so a window below 1ms often waits about 1ms. Defaults to
	// GroupCommitWindowDefault: without a window, a batch already holds
	// every append that arrived while the previous one committed.
	Window time.Duration
	// MaxBatch is the most appends in one transaction, between 1 and
	// GroupCommitMaxBatchMax. Defaults to GroupCommitMaxBatchDefault.
	MaxBatch int
}

func (c *Config) withDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	out.Logger = cmp.Or(out.Logger, slog.New(slog.DiscardHandler))
	out.PageSize = cmp.Or(out.PageSize, PageSizeDefault)
	out.GroupCommit.MaxBatch = cmp.Or(out.GroupCommit.MaxBatch, GroupCommitMaxBatchDefault)
	out.NotifyInterval = cmp.Or(out.NotifyInterval, NotifyIntervalDefault)
	return &out
}

func (c *Config) validate() error {
	if c.PageSize < 0 {
		return &ArgumentError{Arg: "Config.PageSize", Reason: fmt.Sprintf("%d is negative", c.PageSize)}
	}
	if w := c.GroupCommit.Window; w < 0 || w > GroupCommitWindowMax {
		return &ArgumentError{Arg: "Config.GroupCommit.Window", Reason: fmt.Sprintf("%s is not between 0 and %s", w, GroupCommitWindowMax)}
	}
	if n := c.GroupCommit.MaxBatch; n < 1 || n > GroupCommitMaxBatchMax {
		return &ArgumentError{Arg: "Config.GroupCommit.MaxBatch", Reason: fmt.Sprintf("%d is not between 1 and %d", n, GroupCommitMaxBatchMax)}
	}
	if c.NotifyInterval < -1 {
		return &ArgumentError{Arg: "Config.NotifyInterval", Reason: "negative (use -1 for no interval)"}
	}
	return nil
}
