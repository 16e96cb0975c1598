package meowmx

import (
	"cmp"
	"fmt"
	"log/slog"
)

// PageSizeDefault is the default for Config.PageSize.
const PageSizeDefault = 1000

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
}

func (c *Config) withDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	out.Logger = cmp.Or(out.Logger, slog.New(slog.DiscardHandler))
	out.PageSize = cmp.Or(out.PageSize, PageSizeDefault)
	return &out
}

func (c *Config) validate() error {
	if c.PageSize < 0 {
		return &ArgumentError{Arg: "Config.PageSize", Reason: fmt.Sprintf("%d is negative", c.PageSize)}
	}
	return nil
}
