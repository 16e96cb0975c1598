package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImport copies a store into another with read --json and import, on
// both backends: the copy reads back the same, a second import writes
// nothing, and a file that breaks a stream's versions is refused with exit
// code 2.
func TestImport(t *testing.T) {
	t.Parallel()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := filepath.Join(t.TempDir(), "src.db")
			for i, ev := range []string{"Born", "Fed", "Slept"} {
				r := run(t, src, "", "append", "--type", "cat", "--id", "felix", "--event", ev, "--data", `{"n":`+string(rune('0'+i))+`}`)
				require.Equal(t, 0, r.code, r.stderr)
			}
			r := run(t, src, "", "append", "--type", "dog", "--id", "rex", "--event", "Born", "--data", `{}`, "--metadata", `{"by":"test"}`)
			require.Equal(t, 0, r.code, r.stderr)
			exported := run(t, src, "", "read", "--json")
			require.Equal(t, 0, exported.code, exported.stderr)
			file := filepath.Join(t.TempDir(), "events.ndjson")
			require.NoError(t, os.WriteFile(file, []byte(exported.stdout), 0o600))

			r = run(t, db, "", "import", file)
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "4 written  0 skipped")
			r = run(t, db, exported.stdout, "import") // standard input
			require.Equal(t, 0, r.code, r.stderr)
			require.Contains(t, r.stdout, "0 written  4 skipped")

			strip := func(out string) []string { // the lines without their positions and times
				var lines []string
				for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
					i, j := strings.Index(l, `"aggregate_type"`), strings.Index(l, `,"recorded_at"`)
					lines = append(lines, l[i:j])
				}
				return lines
			}
			copied := run(t, db, "", "read", "--json")
			require.Equal(t, 0, copied.code, copied.stderr)
			require.Equal(t, strip(exported.stdout), strip(copied.stdout))

			r = run(t, db, `{"aggregate_type":"cat","aggregate_id":"felix","version":5,"event_type":"E","data":{}}`+"\n", "import")
			require.Equal(t, 2, r.code, r.stdout+r.stderr)
			r = run(t, db, "not json\n", "import")
			require.Equal(t, 2, r.code, r.stdout+r.stderr)
		})
	}
}
