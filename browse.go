package meowmx

import (
	"context"
	"errors"
	"fmt"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// CategoryInfo describes a category: its streams and their events.
type CategoryInfo = meowmxtype.CategoryInfo

// CategoriesCountCapDefault is how many streams of each category
// Store.Categories counts before it estimates.
const CategoriesCountCapDefault = 10000

// ErrBrowseUnsupported is returned by Store.Categories and Store.Streams
// when the driver cannot list categories and streams.
var ErrBrowseUnsupported = errors.New("meowmx: the driver cannot list categories and streams")

// CategoriesOpts page through categories. Nil means the first
// Config.PageSize categories.
type CategoriesOpts struct {
	// After is the category to list after, in byte order of names.
	After string
	// Limit caps how many categories are returned. Defaults to
	// Config.PageSize.
	Limit int
	// CountCap is how many streams of each category are counted; beyond
	// it the counts are estimates (CategoryInfo.Estimated). Defaults to
	// CategoriesCountCapDefault.
	CountCap int
}

// Categories lists categories in byte order of their names, with how many
// streams and events each holds. It reads a bounded amount whatever the
// size of the store: categories are found by the index, one probe each,
// and counts stop at opts.CountCap streams, estimated beyond.
func (s *Store[TTx]) Categories(ctx context.Context, opts *CategoriesOpts) ([]*CategoryInfo, error) {
	var o CategoriesOpts
	if opts != nil {
		o = *opts
	}
	if o.Limit < 0 || o.CountCap < 0 {
		return nil, &ArgumentError{Arg: "CategoriesOpts", Reason: "negative Limit or CountCap"}
	}
	if s.caps.Browser == nil {
		return nil, ErrBrowseUnsupported
	}
	if o.Limit == 0 {
		o.Limit = s.config.PageSize
	}
	if o.CountCap == 0 {
		o.CountCap = CategoriesCountCapDefault
	}
	out, err := s.caps.Browser.CategoryList(ctx, &meowmxdriver.CategoryListParams{After: o.After, Limit: o.Limit, CountCap: o.CountCap})
	if err != nil {
		return nil, fmt.Errorf("meowmx: categories: %w", err)
	}
	return out, nil
}

// StreamsOpts select streams of one category.
type StreamsOpts struct {
	// Type is the category. Required.
	Type string
	// Prefix, when set, selects the streams whose ids start with it.
	Prefix string
	// After is the id to list after, in byte order of ids (UUID ids: in
	// UUID order). Page through streams by passing the last one's id.
	After string
	// Limit caps how many streams are returned. Defaults to
	// Config.PageSize.
	Limit int
}

// Streams lists streams of a category in byte order of their ids, one
// page (keyset-paged by opts.After).
func (s *Store[TTx]) Streams(ctx context.Context, opts *StreamsOpts) ([]*StreamInfo, error) {
	if opts == nil || opts.Type == "" {
		return nil, &ArgumentError{Arg: "StreamsOpts.Type", Reason: "empty"}
	}
	if opts.Limit < 0 {
		return nil, &ArgumentError{Arg: "StreamsOpts.Limit", Reason: fmt.Sprintf("%d is negative", opts.Limit)}
	}
	if s.caps.Browser == nil {
		return nil, ErrBrowseUnsupported
	}
	limit := opts.Limit
	if limit == 0 {
		limit = s.config.PageSize
	}
	out, err := s.caps.Browser.StreamList(ctx, &meowmxdriver.StreamListParams{
		Type: opts.Type, Prefix: opts.Prefix, After: opts.After, Limit: limit})
	switch {
	case errors.Is(err, meowmxdriver.ErrInvalidInput): // not an id of the column: no stream after it
		return nil, &ArgumentError{Arg: "StreamsOpts.After", Reason: "not an aggregate id of this store", Err: err}
	case err != nil:
		return nil, fmt.Errorf("meowmx: streams of %q: %w", opts.Type, err)
	}
	return out, nil
}
