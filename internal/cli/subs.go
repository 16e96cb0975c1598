package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/meowmx/meowmx"
)

func (a *app) workerCmd() *cobra.Command {
	var name, typ string
	var partitions int
	var failFast bool
	c := &cobra.Command{
		Use:   "worker",
		Short: "Run a named, durable subscription that prints what it handles",
		Long: `Run the subscription --name: print each event it handles and, every few
seconds, its rate. The checkpoint is kept in the database, so a restart goes on
after the last event handled. Start several workers with the same name, in one
or more terminals: one handles the events, the others stand by and take over
when it stops. Ctrl-C stops the worker cleanly.

With --partitions P the subscription is a consumer group of P partitions
(streams are spread over them by a hash of their id): every worker started
with that name is a member, the members share the partitions evenly, and each
stream is handled in order by one member at a time. P is fixed when the
subscription is created.

The worker logs to stderr what it does: owning the subscription or standing
by, losing the database and when it retries, sessions holding the commit
horizon back. When the database cannot be reached it says so within a second
and keeps retrying; --fail-fast makes it exit 1 instead. It exits 1 when its
subscription is deleted while it runs.`,
		Example: `  meowmx worker --name printer
  meowmx worker --name cat-printer --type cat
  meowmx worker --name fanout --partitions 8`,
		Args:   cobra.NoArgs,
		PreRun: func(*cobra.Command, []string) { a.long = true },
		RunE: a.withBackend(openWrite, func(ctx context.Context, b *backend, _ []string) error {
			var types []string
			if typ != "" {
				types = []string{typ}
			}
			// Say at once when the database cannot be reached: the
			// subscription retries quietly while it cannot take its lease.
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			err := b.ping(pctx)
			cancel()
			switch {
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil && failFast:
				return fmt.Errorf("worker %s: cannot reach the database (--fail-fast): %w", name, err)
			case err != nil:
				a.log.WarnContext(ctx, "meowmx: worker: cannot reach the database; retrying until it answers (--fail-fast exits instead)",
					"subscription", name, "err", err, "retry_in", lockInterval)
			default:
				fmt.Fprintf(a.out(), "worker %s: waiting for events; Ctrl-C to stop\n", name)
			}
			p := &printer{w: a.env.Stdout}
			var mu sync.Mutex
			handled, last, lastAt := 0, 0, time.Now()
			err = b.run(ctx, subscription{name: name, types: types, partitions: partitions, handle: func(_ context.Context, evs []*meowmx.RecordedEvent) error {
				mu.Lock()
				defer mu.Unlock()
				for _, ev := range evs {
					if err := p.print(ev); err != nil {
						return err
					}
				}
				handled += len(evs)
				if el := time.Since(lastAt); el >= 2*time.Second {
					fmt.Fprintf(a.out(), "worker %s: %d events handled, %.0f events/s\n", name, handled, float64(handled-last)/el.Seconds())
					last, lastAt = handled, time.Now()
				}
				return nil
			}})
			var ahead *meowmx.CheckpointAheadError
			switch {
			case errors.Is(err, meowmx.ErrSubscriptionNotFound):
				// Not the caller's mistake (exit 2), nor the database's:
				// exit 1, with what to do.
				return fmt.Errorf("worker %s: the subscription was deleted while this worker ran (meowmx subs delete); run the worker again to start it anew", name)
			case errors.As(err, &ahead):
				return fmt.Errorf("worker %s: its checkpoint %s is ahead of this database (restored from a dump?); "+
					"move it to the last event it handled with: meowmx subs reset %s --to POSITION", name, ahead.Checkpoint, name)
			}
			return err
		}),
	}
	c.Flags().StringVar(&name, "name", "", "subscription name (required)")
	c.Flags().BoolVar(&failFast, "fail-fast", false, "exit 1 when the database cannot be reached at start, instead of retrying")
	c.Flags().StringVar(&typ, "type", "", "handle this aggregate type only")
	c.Flags().IntVar(&partitions, "partitions", 0, fmt.Sprintf("run as a member of a consumer group of this many partitions (2 to %d)", meowmx.MaxPartitions))
	_ = c.MarkFlagRequired("name")
	return a.withMetrics(c)
}

func (a *app) subsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "subs",
		Short: "List subscriptions with their position and lag",
		Long: `List the subscriptions: checkpoint position, lag (events behind the head),
events waiting behind an open transaction (PostgreSQL), and parked events.
When an open transaction holds the commit horizon back, the sessions holding it
are listed: pid, database, application_name, state and transaction age (a
transaction in any database of the server holds it back). Subcommands reset a subscription, and list and replay its parked
events.`,
		Example: `  meowmx subs
  meowmx subs reset printer
  meowmx subs reset printer --to 1234:56
  meowmx subs parked printer
  meowmx subs replay printer`,
		Args: cobra.NoArgs,
		RunE: a.withBackend(openRead, func(ctx context.Context, b *backend, _ []string) error {
			subs, err := b.Subscriptions(ctx)
			if err != nil {
				return err
			}
			if len(subs) == 0 {
				fmt.Fprintln(a.out(), "no subscriptions")
				return nil
			}
			fmt.Fprintf(a.out(), "%-24s %-16s %8s %8s %8s %8s %-8s  %s\n", "NAME", "POSITION", "LAG", "BEHIND", "WAITING", "PARKED", "STATE", "FILTER")
			for _, s := range subs {
				filter := "all"
				if len(s.AggregateTypes) > 0 {
					filter = "types " + strings.Join(s.AggregateTypes, ",")
				}
				if len(s.EventTypes) > 0 {
					filter += " events " + strings.Join(s.EventTypes, ",")
				}
				switch {
				case s.LagUnknown:
					filter = "unknown (another client's subscription)"
				case s.FilterInferred:
					filter += " (inferred: another client's subscription)"
				}
				if s.Ahead {
					filter += "  AHEAD OF THE DATABASE: reset it"
				}
				lag, behind := fmt.Sprint(s.Lag), "-"
				if s.LagEstimated {
					lag = "~" + lag // an estimate
				}
				if s.LagUnknown {
					lag = "?"
				}
				if !s.OldestUnhandled.IsZero() {
					behind = time.Since(s.OldestUnhandled).Round(time.Second).String()
				}
				fmt.Fprintf(a.out(), "%-24s %-16s %8s %8s %8d %8d %-8s  %s\n", s.Name, s.Position, lag, behind, s.Waiting, s.Parked, s.State, filter)
				if s.Owner != nil {
					progress := "never"
					if s.SinceProgress >= 0 {
						progress = s.SinceProgress.Round(time.Millisecond).String() + " ago"
					}
					fmt.Fprintf(a.out(), "  owned by %s, lease %s left, progress %s\n", s.Owner, s.LeaseLeft.Round(time.Millisecond), progress)
				}
				for _, w := range s.Standbys {
					fmt.Fprintf(a.out(), "  standing by: %s\n", w)
				}
				if s.Partitions > 0 {
					fmt.Fprintf(a.out(), "  consumer group: %d partitions, %d members\n", s.Partitions, len(s.Members))
					for _, m := range s.Members {
						fmt.Fprintf(a.out(), "  member: %s\n", m)
					}
					for _, p := range s.PartitionInfos {
						if p == nil {
							continue
						}
						owner := "no owner"
						if p.Owner != nil {
							owner = "owned by " + p.Owner.String()
						}
						plag := fmt.Sprint(p.Lag)
						if p.LagEstimated {
							plag = "~" + plag
						}
						fmt.Fprintf(a.out(), "  %-22s %-16s %8s %8s %8d %8d %-8s  %s\n", p.Name, p.Position, plag, "", p.Waiting, p.Parked, p.State, owner)
					}
				}
				for _, h := range s.HorizonHeldBy {
					app := h.Application
					if app == "" {
						app = "-"
					}
					fmt.Fprintf(a.out(), "  held back by pid %d in database %s, application %s (%s, transaction open %s, xid %d): %s\n",
						h.PID, h.Database, app, h.State, h.Age.Round(time.Second), h.TransactionID, oneLine(fmt.Errorf("%s", h.Query)))
				}
			}
			return nil
		}),
	}
	var to string
	reset := &cobra.Command{
		Use:   "reset NAME",
		Short: "Move a subscription's checkpoint (to the beginning by default)",
		Long: `Move the checkpoint of subscription NAME: back, to handle events again, or
forward, to skip them. The next event handled is the first after --to (default:
the beginning). A running worker picks the new checkpoint up at once.`,
		Example: `  meowmx subs reset printer
  meowmx subs reset printer --to 1234:56`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pos := meowmx.Position{}
			if to != "" {
				p, err := parsePositionFlag("to", to)
				if err != nil {
					return err
				}
				pos = *p
			}
			ctx := cmd.Context()
			b, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer b.close()
			if err := b.ResetSubscription(ctx, args[0], pos); err != nil {
				return err
			}
			fmt.Fprintf(a.out(), "subscription %s reset to %s\n", args[0], pos)
			return nil
		},
	}
	reset.Flags().StringVar(&to, "to", "", "position transaction_id:event_id (default: the beginning)")
	parked := &cobra.Command{
		Use:     "parked NAME",
		Short:   "List the events a subscription parked",
		Example: `  meowmx subs parked printer`,
		Args:    cobra.ExactArgs(1),
		RunE: a.withBackend(openRead, func(ctx context.Context, b *backend, args []string) error {
			evs, err := b.ParkedEvents(ctx, args[0])
			if err != nil {
				return err
			}
			if len(evs) == 0 {
				fmt.Fprintf(a.out(), "subscription %s has no parked events\n", args[0])
			}
			for _, p := range evs {
				fmt.Fprintf(a.out(), "%s %s v%d %s (%d attempts): %s\n", p.Event.Position, p.Event.StreamID, p.Event.Version,
					p.Event.Type, p.Attempts, oneLine(fmt.Errorf("%s", p.Error)))
			}
			return nil
		}),
	}
	replay := &cobra.Command{
		Use:   "replay NAME [EVENT_ID...]",
		Short: "Hand parked events to the subscription's worker again",
		Long: `Mark parked events of subscription NAME for replay (all, or those whose event
ids are given): its running worker hands them to the handler again, in order.`,
		Example: `  meowmx subs replay printer
  meowmx subs replay printer 57 58`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &meowmx.ReplayParkedOpts{}
			for _, s := range args[1:] {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					return usagef("event id %s: want a number", short(s))
				}
				opts.EventIDs = append(opts.EventIDs, id)
			}
			ctx := cmd.Context()
			b, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer b.close()
			n, err := b.ReplayParked(ctx, args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out(), "%d parked events of %s marked for replay\n", n, args[0])
			return nil
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a subscription and its parked events",
		Example: `  meowmx subs delete printer`,
		Args:    cobra.ExactArgs(1),
		RunE: a.withBackend(openWrite, func(ctx context.Context, b *backend, args []string) error {
			if err := b.DeleteSubscription(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.out(), "subscription %s deleted\n", args[0])
			return nil
		}),
	}
	c.AddCommand(reset, parked, replay, del)
	return c
}
