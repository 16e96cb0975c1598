package meowmx_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

// TestReadNDJSON: every event of a file, read through small reads, keeps
// its own data once later lines have been read (lines are read in one
// buffer, reused), lines longer than that buffer included; blank lines
// are skipped, a last line needs no newline, and a bad line is named.
func TestReadNDJSON(t *testing.T) {
	var file strings.Builder
	var want []string
	for i := range 300 {
		data := fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", i%7*30))
		if i%100 == 50 || i == 299 { // the last line long, and with no newline
			data = fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("y", 200_000)) // over the 64 KiB buffer
		}
		want = append(want, data)
		fmt.Fprintf(&file, `{"position":"9:%d","aggregate_type":"cat","aggregate_id":"s%d","version":%d,"event_type":"E","data":%s}`, i+1, i%10, i/10, data)
		if i < 299 {
			file.WriteString("\n")
		}
		if i%60 == 0 {
			file.WriteString("\n  \n")
		}
	}
	var got []*meowmx.RecordedEvent
	for ev, err := range meowmx.ReadNDJSON(iotest.HalfReader(strings.NewReader(file.String()))) {
		require.NoError(t, err)
		got = append(got, ev)
	}
	require.Len(t, got, len(want))
	for i, ev := range got {
		require.Equal(t, want[i], string(ev.Data), "event %d", i)
		require.Equal(t, fmt.Sprint("s", i%10), ev.StreamID.ID)
		require.Equal(t, int64(i/10), ev.Version)
	}

	// A read that fails in the middle of a line: the events before it,
	// then the read's error, not the cut line's.
	boom := errors.New("boom")
	good := `{"aggregate_type":"cat","aggregate_id":"s","version":0,"event_type":"E","data":{}}` + "\n"
	var evs int
	var readErr error
	for _, err := range meowmx.ReadNDJSON(io.MultiReader(strings.NewReader(good+good[:30]), iotest.ErrReader(boom))) {
		if err != nil {
			readErr = err
			break
		}
		evs++
	}
	require.Equal(t, 1, evs)
	require.ErrorIs(t, readErr, boom)
	require.NotErrorIs(t, readErr, meowmx.ErrInvalidArgument)

	bad := `{"aggregate_type":"cat","aggregate_id":"s","version":0,"event_type":"E","data":{}}` + "\n\n" + `{"aggregate_type":"cat"`
	var n int
	for _, err := range meowmx.ReadNDJSON(strings.NewReader(bad)) {
		if err != nil {
			var ae *meowmx.ArgumentError
			require.True(t, errors.As(err, &ae), "%v", err)
			require.Equal(t, "line 3", ae.Arg)
			return
		}
		n++
	}
	t.Fatalf("no error for a truncated line after %d events", n)
}
