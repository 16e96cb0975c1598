package cli

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Log formats and levels of --log-format and --log-level.
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// newLogger returns the logger of the long-running commands (worker, read
// --tail, sub, load, and any command that runs for a while): slog to w, in
// format (text or json) at level (debug, info, warn or error). Bad values
// are usage errors. The logger is handed to the store, which logs
// ownership, standing by, outages with their retry times, horizon holders
// and stalls through it.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %s: want debug, info, warn or error", short(level))
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case logFormatText:
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case logFormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %s: want text or json", short(format))
}

// short quotes s for an error message, cut to its first 32 bytes: user
// input is never repeated whole.
func short(s string) string {
	const most = 32
	if len(s) <= most {
		return strconv.Quote(s)
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
