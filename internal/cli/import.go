package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/meowmx/meowmx"
)

// importer is a store that imports: every meowmx.Store.
type importer interface {
	Import(ctx context.Context, events iter.Seq2[*meowmx.RecordedEvent, error], opts *meowmx.ImportOpts) (*meowmx.ImportResult, error)
}

func (a *app) importCmd() *cobra.Command {
	var batch int
	c := &cobra.Command{
		Use:   "import [FILE]",
		Short: "Load events from NDJSON, as read --json prints them",
		Long: `Load events from FILE (or standard input when FILE is - or missing), one JSON
object per line as 'meowmx read --json' prints them. Each event keeps its
stream, version, type, data, metadata, UUID and time; it gets a new position, in
the file's order. Events already stored (same stream and version) are skipped,
so importing a file again writes nothing twice; an event whose UUID is stored
with another event, or repeated in its batch, fails its batch (exit code 2,
naming the UUID). On PostgreSQL each batch is one COPY and one
transaction, two batches in flight, committed in order.

A stream's events must have consecutive versions that start at most one past the
stream's stored version: a batch that breaks this is refused (exit code 2), and
the batches before it stay written. On a terminal a progress line shows the
events written and skipped, events/s and how much of the file is read.`,
		Example: `  meowmx --db postgres://localhost/old read --json > events.ndjson
  meowmx --db postgres://localhost/new import events.ndjson
  gunzip -c events.ndjson.gz | meowmx import`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 1 {
				return usagef("--batch-size %d: want at least 1", batch)
			}
			in, size := a.env.Stdin, int64(0)
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageError{err}
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil {
					size = st.Size()
				}
				in = f
			}
			b, err := a.open(cmd.Context())
			if err != nil {
				return err
			}
			defer b.close()
			im, ok := b.store.(importer)
			if !ok {
				return meowmx.ErrImportUnsupported
			}
			return a.runImport(cmd.Context(), im, in, size, batch)
		},
	}
	c.Flags().IntVar(&batch, "batch-size", meowmx.ImportBatchSizeDefault, "events per transaction")
	return c
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (a *app) runImport(ctx context.Context, im importer, in io.Reader, size int64, batch int) error {
	cr := &countingReader{r: in}
	start := time.Now()
	var written, skipped atomic.Int64
	progress := func() string {
		el := time.Since(start)
		s := fmt.Sprintf("%d written  %d skipped  %.0f events/s  %s elapsed",
			written.Load(), skipped.Load(), float64(written.Load()+skipped.Load())/el.Seconds(), el.Round(100*time.Millisecond))
		if size > 0 {
			s = fmt.Sprintf("%3.0f%%  %s", 100*float64(cr.n.Load())/float64(size), s)
		}
		return s
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if a.env.Terminal {
					fmt.Fprintf(a.out(), "\r\033[K%s", progress())
				}
			}
		}
	}()
	_, err := im.Import(ctx, meowmx.ReadNDJSON(cr), &meowmx.ImportOpts{BatchSize: batch, Progress: func(r meowmx.ImportResult) {
		written.Store(r.Written)
		skipped.Store(r.Skipped)
	}})
	close(done)
	<-stopped
	if a.env.Terminal {
		fmt.Fprint(a.out(), "\r\033[K")
	}
	if err != nil {
		fmt.Fprintf(a.out(), "stopped: %s\n", progress())
		if errors.Is(err, meowmx.ErrImportRefused) {
			return usageError{err}
		}
		return err
	}
	fmt.Fprintf(a.out(), "imported: %s\n", progress())
	return nil
}
