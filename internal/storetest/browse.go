package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

// testBrowse checks the console's reads: categories with counts (capped,
// then estimated), streams of a category by id prefix in byte order,
// paged, and events newest first, filtered and paged.
func testBrowse[TTx any](t *testing.T, b Backend[TTx]) {
	ctx := context.Background()
	s := b.NewStore(t, nil)
	// Ids in byte order: "a%" and "a_" would match every id under a LIKE
	// that does not escape them; "aé" and "a\U0010FFFF" test the end of a
	// prefix's range past one byte.
	ids := []string{"a", "a%", "a_", "ab", "abc", "ac", "b", "aé", "aé2", "a\U0010FFFF", "a\U0010FFFFz"}
	for i, id := range ids {
		evs := []meowmx.EventData{ev("Born", `{}`)}
		for range i % 3 {
			evs = append(evs, ev("Meowed", `{}`))
		}
		_, err := s.Append(ctx, meowmx.StreamID{Type: "cat", ID: id}, meowmx.NoStream, evs...)
		require.NoError(t, err)
	}
	for i := range 3 {
		_, err := s.Append(ctx, meowmx.StreamID{Type: "dog", ID: "d" + string(rune('0'+i))}, meowmx.NoStream, ev("Barked", `{}`))
		require.NoError(t, err)
	}
	_, err := s.Append(ctx, meowmx.StreamID{Type: "Zebra", ID: "z"}, meowmx.NoStream, ev("Born", `{}`))
	require.NoError(t, err)
	settle(t, s)

	t.Run("Categories", func(t *testing.T) {
		cats, err := s.Categories(ctx, nil)
		require.NoError(t, err)
		var names []string
		for _, c := range cats {
			names = append(names, c.Type)
		}
		require.Equal(t, []string{"Zebra", "cat", "dog", settleType}, names, "byte order: upper case first")
		require.Equal(t, meowmx.CategoryInfo{Type: "cat", Streams: 11, Events: 11 + 10}, *cats[1])
		require.Equal(t, meowmx.CategoryInfo{Type: "dog", Streams: 3, Events: 3}, *cats[2])

		page, err := s.Categories(ctx, &meowmx.CategoriesOpts{After: "Zebra", Limit: 1, CountCap: 4})
		require.NoError(t, err)
		require.Len(t, page, 1)
		require.Equal(t, "cat", page[0].Type)
		require.True(t, page[0].Estimated, "11 streams, 4 counted")
		require.GreaterOrEqual(t, page[0].Streams, int64(4))
		page, err = s.Categories(ctx, &meowmx.CategoriesOpts{After: "cat", CountCap: 3})
		require.NoError(t, err)
		require.Equal(t, "dog", page[0].Type)
		require.False(t, page[0].Estimated, "3 streams, 3 counted")
	})

	t.Run("Streams", func(t *testing.T) {
		list := func(o meowmx.StreamsOpts) (out []string) {
			o.Type = "cat"
			got, err := s.Streams(ctx, &o)
			require.NoError(t, err)
			for _, st := range got {
				require.Equal(t, "cat", st.StreamID.Type)
				out = append(out, st.StreamID.ID)
			}
			return out
		}
		all := []string{"a", "a%", "a_", "ab", "abc", "ac", "aé", "aé2", "a\U0010FFFF", "a\U0010FFFFz", "b"}
		require.Equal(t, all, list(meowmx.StreamsOpts{}))
		require.Equal(t, all[:3], list(meowmx.StreamsOpts{Limit: 3}))
		require.Equal(t, all[3:6], list(meowmx.StreamsOpts{After: "a_", Limit: 3}))
		require.Equal(t, []string{"ab", "abc"}, list(meowmx.StreamsOpts{Prefix: "ab"}))
		require.Equal(t, []string{"abc"}, list(meowmx.StreamsOpts{Prefix: "ab", After: "ab"}))
		require.Equal(t, []string{"a%"}, list(meowmx.StreamsOpts{Prefix: "a%"}))
		require.Equal(t, []string{"a_"}, list(meowmx.StreamsOpts{Prefix: "a_"}))
		require.Equal(t, []string{"aé", "aé2"}, list(meowmx.StreamsOpts{Prefix: "aé"}))
		require.Equal(t, []string{"a\U0010FFFF", "a\U0010FFFFz"}, list(meowmx.StreamsOpts{Prefix: "a\U0010FFFF"}))
		require.Empty(t, list(meowmx.StreamsOpts{Prefix: "x"}))
		none, err := s.Streams(ctx, &meowmx.StreamsOpts{Type: "nope"})
		require.NoError(t, err)
		require.Empty(t, none)
		_, err = s.Streams(ctx, nil)
		require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
	})

	t.Run("ReadAllBackward", func(t *testing.T) {
		// Every event, once the horizon has passed them: it can still be
		// held back for a statement after settle, by a lock-only session
		// of another test whose transaction ends between the statement's
		// snapshot and its read of pg_stat_activity (a reader then waits,
		// never skips).
		var forward []*meowmx.RecordedEvent
		require.Eventually(t, func() bool {
			var err error
			forward, err = s.ReadAll(ctx, &meowmx.ReadAllOpts{Limit: 1000})
			require.NoError(t, err)
			return len(forward) == len(ids)+10+3+1+1
		}, 30*time.Second, 5*time.Millisecond, "cats, their meows, dogs, the zebra, settle")
		var back []*meowmx.RecordedEvent
		var after meowmx.Position
		for {
			page, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{Backward: true, After: after, Limit: 4})
			require.NoError(t, err)
			back = append(back, page...)
			if len(page) < 4 {
				break
			}
			after = page[len(page)-1].Position
		}
		require.Len(t, back, len(forward))
		for i, e := range back {
			require.Equal(t, forward[len(forward)-1-i].Position, e.Position)
		}
		dogs, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{Backward: true, AggregateTypes: []string{"dog"}})
		require.NoError(t, err)
		require.Len(t, dogs, 3)
		require.Equal(t, "d2", dogs[0].StreamID.ID)
		meows, err := s.ReadAll(ctx, &meowmx.ReadAllOpts{Backward: true, EventTypes: []string{"Meowed"}, AggregateTypes: []string{"cat"}, Limit: 100})
		require.NoError(t, err)
		require.Len(t, meows, 10)
		for _, e := range meows {
			require.Equal(t, "Meowed", e.Type)
		}
		for _, err := range s.IterAll(ctx, &meowmx.ReadAllOpts{Backward: true}) {
			require.ErrorIs(t, err, meowmx.ErrInvalidArgument)
		}
	})
}
