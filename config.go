package meowmx

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"
)

// PageSizeDefault is the default for Config.PageSize.
const PageSizeDefault = 1000

// NotifyIntervalDefault is the default for Config.NotifyInterval.
const NotifyIntervalDefault = 10 * time.Millisecond

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
	// NotifyInterval is the least time between two notifications that
	// Append sends to subscribers in other processes (PostgreSQL NOTIFY,
	// sent after the append's commit and coalesced). An append to a quiet
	// store is announced at once; under load, when appends commit while a
	// notification is in flight, subscribers are woken at most once per
	// interval. Defaults to NotifyIntervalDefault; -1 sends
	// them back to back (one in flight at a time).
	NotifyInterval time.Duration
}

func (c *Config) withDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	out.Logger = cmp.Or(out.Logger, slog.New(slog.DiscardHandler))
	out.PageSize = cmp.Or(out.PageSize, PageSizeDefault)
	out.NotifyInterval = cmp.Or(out.NotifyInterval, NotifyIntervalDefault)
	return &out
}

func (c *Config) validate() error {
	if c.PageSize < 0 {
		return &ArgumentError{Arg: "Config.PageSize", Reason: fmt.Sprintf("%d is negative", c.PageSize)}
	}
	if c.NotifyInterval < -1 {
		return &ArgumentError{Arg: "Config.NotifyInterval", Reason: "negative (use -1 for no interval)"}
	}
	return nil
}
