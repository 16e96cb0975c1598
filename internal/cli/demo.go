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
	// The subscriber prints from its own goroutine: one line at a time.
	// (Never hold this lock across an append: on SQLite the subscriber's
	// transaction holds the one write connection while it prints.)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
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

	// A durable subscription prints every cat event as it arrives; it
	// starts at the end, and is deleted when the demo ends.
	const subName = "meowmx-demo"
	subCtx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- b.run(subCtx, subscription{
			name:  subName,
			types: []string{"cat"},
			start: meowmx.StartFrom{End: true},
			handle: func(_ context.Context, evs []*meowmx.RecordedEvent) error {
				for _, ev := range evs {
					if ev.StreamID.ID == name {
						say("    [subscriber] %s v%d %s %s", ev.StreamID, ev.Version, ev.Type, trimJSON(ev.Data))
					}
				}
				return nil
			},
		})
	}()
	defer func() {
		stopSub()
		<-subDone
		_ = b.DeleteSubscription(context.WithoutCancel(ctx), subName)
	}()
	if err := b.WaitForSubscription(ctx, subName); err != nil { // it exists and has caught up
		return err
	}

	c := catFromEvents(name, nil)
	say("1. Adopting %s and looking after it: three appends, each at the version it expects.", name)
	for range 3 {
		ev := c.next()
		res, err := b.Append(ctx, stream, meowmx.Exact(c.Version), ev)
		if err == nil {
			say("  appended %s at version %d", ev.Type, res.Version)
			c.apply(ev.Type, ev.Data)
			c.Version = res.Version
		}
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
	_, err := b.Append(ctx, stream, meowmx.Exact(loaded), alice)
	if err == nil {
		say("  alice appended Fed at version %d", loaded+1)
	}
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
	res, err := b.Append(ctx, stream, meowmx.Exact(c.Version), petted)
	if err == nil {
		say("  bob appended Petted at version %d", res.Version)
	}
	if err != nil {
		return err
	}

	// Wait until the subscriber has handled all five events.
	if err := b.WaitForSubscription(ctx, subName); err != nil {
		return err
	}
	select {
	case err := <-subDone:
		return fmt.Errorf("demo: subscriber stopped: %w", err)
	default:
	}

	events, err = b.ReadStream(ctx, name, nil)
	if err != nil {
		return err
	}
	say("3. %s, rebuilt from its %d events:", name, len(events))
	fmt.Fprint(out, catFromEvents(name, events).String())
	return nil
}
