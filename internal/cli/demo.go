package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/meowmx/meowmx"
)

func (a *app) demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Show meowmx at work, on a fresh embedded database",
		Long: `In one process: write a few cat events, show a subscriber receiving them live,
show an optimistic-concurrency conflict being caught and retried, and print the
cat. Without --db it runs on a new SQLite file in a temporary folder, removed
afterwards; no server is needed.`,
		Example: `  meowmx demo
  meowmx --db postgres://localhost:5432/app demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if a.db == "" {
				dir, err := os.MkdirTemp("", "meowmx-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				a.db = filepath.Join(dir, "demo.db")
			}
			b, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer b.close()
			if _, err := b.Migrate(ctx, nil); err != nil {
				return err
			}
			return a.demo(ctx, b)
		},
	}
}

func (a *app) demo(ctx context.Context, b *backend) error {
	out := a.out()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	name := "blanco"
	for i := 2; ; i++ { // on a database of your own, pick a cat nobody adopted yet
		if _, err := b.Stream(ctx, name); errors.Is(err, meowmx.ErrStreamNotFound) {
			break
		} else if err != nil {
			return err
		}
		name = fmt.Sprintf("blanco-%d", i)
	}
	stream := meowmx.StreamID{Type: "cat", ID: name}

	// A subscriber prints every event as it arrives.
	head, err := headPosition(ctx, b)
	if err != nil {
		return err
	}
	subCtx, stopSub := context.WithCancel(ctx)
	var mu sync.Mutex
	seen := 0
	subDone := make(chan error, 1)
	go func() {
		opts := &meowmx.ReadAllOpts{After: head, AggregateTypes: []string{"cat"}}
		for {
			for ev, err := range b.IterAll(subCtx, opts) {
				if err != nil {
					subDone <- err
					return
				}
				opts.After = ev.Position
				if ev.StreamID.ID != name {
					continue
				}
				mu.Lock()
				seen++
				say("    [subscriber] %s v%d %s %s", ev.StreamID, ev.Version, ev.Type, trimJSON(ev.Data))
				mu.Unlock()
			}
			if sleep(subCtx, 20*time.Millisecond) != nil {
				subDone <- nil
				return
			}
		}
	}()
	defer stopSub()

	c := catFromEvents(name, nil)
	say("1. Adopting %s and looking after it: three appends, each at the version it expects.", name)
	for range 3 {
		ev := c.next()
		mu.Lock()
		res, err := b.Append(ctx, stream, meowmx.Exact(c.Version), ev)
		if err == nil {
			say("  appended %s at version %d", ev.Type, res.Version)
			c.apply(ev.Type, ev.Data)
			c.Version = res.Version
		}
		mu.Unlock()
		if err != nil {
			return err
		}
		if err := sleep(ctx, 150*time.Millisecond); err != nil {
			return err
		}
	}

	say("2. Two people load %s at version %d and both decide to feed it.", name, c.Version)
	loaded := c.Version
	alice := meowmx.EventData{Type: "Fed", Data: mustJSON(map[string]string{"food": "salmon"})}
	mu.Lock()
	_, err = b.Append(ctx, stream, meowmx.Exact(loaded), alice)
	if err == nil {
		say("  alice appended Fed at version %d", loaded+1)
	}
	mu.Unlock()
	if err != nil {
		return err
	}
	bob := meowmx.EventData{Type: "Fed", Data: mustJSON(map[string]string{"food": "chicken"})}
	_, err = b.Append(ctx, stream, meowmx.Exact(loaded), bob)
	var ce *meowmx.ConcurrencyError
	if !errors.As(err, &ce) {
		return fmt.Errorf("demo: expected a conflict for bob, got %v", err)
	}
	say("  bob's append was refused: %v", oneLine(err))
	events, err := b.ReadStream(ctx, name, nil)
	if err != nil {
		return err
	}
	c = catFromEvents(name, events)
	say("  bob reloads: %s is at version %d and has just eaten %s, so bob pets it instead.", name, c.Version, c.LastAte)
	petted := meowmx.EventData{Type: "Petted", Data: mustJSON(map[string]string{"by": "bob"})}
	mu.Lock()
	res, err := b.Append(ctx, stream, meowmx.Exact(c.Version), petted)
	if err == nil {
		say("  bob appended Petted at version %d", res.Version)
	}
	mu.Unlock()
	if err != nil {
		return err
	}

	// Wait until the subscriber has printed all five events.
	for {
		mu.Lock()
		n := seen
		mu.Unlock()
		if n >= 5 {
			break
		}
		select {
		case err := <-subDone:
			return fmt.Errorf("demo: subscriber stopped: %w", err)
		default:
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	stopSub()
	if err := <-subDone; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}

	events, err = b.ReadStream(ctx, name, nil)
	if err != nil {
		return err
	}
	say("3. %s, rebuilt from its %d events:", name, len(events))
	fmt.Fprint(out, catFromEvents(name, events).String())
	return nil
}
