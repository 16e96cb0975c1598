package meowmxdriver

import (
	"context"
	"unicode/utf8"

	"github.com/meowmx/meowmx/meowmxtype"
)

// Browser lists what a store holds, for people looking at it (the console,
// the CLI): categories, the streams of a category, events newest first.
// Every method reads a bounded amount, whatever the size of the store:
// pages are keyset-paged, and counts that would scan a whole table are
// capped.
type Browser interface {
	// CategoryList returns the categories after p.After, in byte order
	// of their names, at most p.Limit. Each counts at most p.CountCap
	// streams: beyond that its counts are estimates (Estimated).
	CategoryList(ctx context.Context, p *CategoryListParams) ([]*meowmxtype.CategoryInfo, error)
	// StreamList returns streams of category p.Type whose ids start with
	// p.Prefix, after the id p.After, in byte order of the ids (UUID ids:
	// in UUID order, which is the order of their text), at most p.Limit.
	StreamList(ctx context.Context, p *StreamListParams) ([]*meowmxtype.StreamInfo, error)
	// EventReadBackward returns events before p.Before (the zero
	// Position: the newest), newest first, below the commit horizon where
	// the driver has one, filtered as EventReadAll filters.
	EventReadBackward(ctx context.Context, p *EventReadBackwardParams) ([]*meowmxtype.RecordedEvent, error)
}

// CategoryListParams are the inputs of Browser.CategoryList.
type CategoryListParams struct {
	After    string
	Limit    int
	CountCap int
}

// StreamListParams are the inputs of Browser.StreamList.
type StreamListParams struct {
	Type   string
	Prefix string
	After  string
	Limit  int
}

// EventReadBackwardParams are the inputs of Browser.EventReadBackward.
type EventReadBackwardParams struct {
	Before         meowmxtype.Position
	AggregateTypes []string
	EventTypes     []string
	Limit          int
}

// PrefixEnd returns the least string above every string that starts with
// prefix, in byte order: prefix with its last character incremented. It
// returns false when there is none (the prefix is all U+10FFFF).
func PrefixEnd(prefix string) (string, bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.RuneError && size == 1:
			continue // not UTF-8: PostgreSQL refuses it anyway
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF:
			r = 0xE000 // past the surrogates, which UTF-8 cannot hold
		default:
			r++
		}
		return prefix + string(r), true
	}
	return "", false
}
