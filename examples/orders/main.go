// Command orders is the story of meowmx's README in Go: an order aggregate
// with place, confirm and ship commands, saved with optimistic
// concurrency, and an orders read model in a table, kept up to date by a
// durable subscription.
//
//	go run ./examples/orders                  # the whole story
//	go run ./examples/orders place o-1 ann 12.50
//	go run ./examples/orders confirm o-1
//	go run ./examples/orders ship o-1 DHL
//	go run ./examples/orders show o-1
//	go run ./examples/orders list
//
// It runs on the SQLite file given by -db (orders.db), or on PostgreSQL
// when -db is a postgres:// URL, with its tables in the schema given by
// -schema (orders_example).
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxpgx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

const usage = "usage: orders [-db FILE|URL] [-schema NAME] [place ID CUSTOMER TOTAL | confirm ID | ship ID CARRIER | show ID | list]"

func main() {
	db := flag.String("db", "orders.db", "SQLite file, or a postgres:// URL")
	schema := flag.String("schema", "orders_example", "PostgreSQL schema of the tables")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Stdout, *db, *schema, flag.Args())
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

// run opens the database db (a SQLite file, or a postgres:// URL with the
// tables in schema) and runs the command in args on it, or the whole story
// when args is empty, writing to w.
func run(ctx context.Context, w io.Writer, db, schema string, args []string) error {
	need := map[string]int{"place": 3, "confirm": 1, "ship": 2, "show": 1, "list": 0}
	if n, ok := need[first(args)]; len(args) > 0 && (!ok || len(args)-1 != n) {
		return errors.New(usage)
	}
	if !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
		driver, err := meowmxsqlite.Open(ctx, db, nil)
		if err != nil {
			return err
		}
		defer driver.Close()
		sqlDB := driver.DB()
		return runOn(ctx, w, driver, args, &view[*sql.Tx]{
			table: `"orders_view"`,
			exec: func(ctx context.Context, query string) error {
				_, err := sqlDB.ExecContext(ctx, query)
				return err
			},
			execTx: func(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
				_, err := tx.ExecContext(ctx, query, args...)
				return err
			},
			list: func(ctx context.Context, query string) ([]viewRow, error) {
				rows, err := sqlDB.QueryContext(ctx, query)
				if err != nil {
					return nil, err
				}
				defer rows.Close()
				var out []viewRow
				for rows.Next() {
					var r viewRow
					if err := rows.Scan(&r.ID, &r.Customer, &r.TotalCents, &r.Status, &r.Carrier, &r.Version); err != nil {
						return nil, err
					}
					out = append(out, r)
				}
				return out, rows.Err()
			},
		})
	}
	pool, err := pgxpool.New(ctx, db)
	if err != nil {
		return err
	}
	defer pool.Close()
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	if err != nil {
		return err
	}
	return runOn(ctx, w, driver, args, &view[pgx.Tx]{
		table: pgx.Identifier{schema, "orders_view"}.Sanitize(),
		exec: func(ctx context.Context, query string) error {
			_, err := pool.Exec(ctx, query)
			return err
		},
		execTx: func(ctx context.Context, tx pgx.Tx, query string, args ...any) error {
			_, err := tx.Exec(ctx, query, args...)
			return err
		},
		list: func(ctx context.Context, query string) ([]viewRow, error) {
			rows, _ := pool.Query(ctx, query)
			return pgx.CollectRows(rows, pgx.RowToStructByPos[viewRow])
		},
	})
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

type app[TTx any] struct {
	out    io.Writer
	store  *meowmx.Store[TTx]
	orders *meowmx.Repository[Order, TTx]
	view   *view[TTx]
}

// runOn runs the command in args on a store of driver, with the read model
// v kept up to date by a subscription that runs, in a goroutine, for as
// long as runOn does.
func runOn[TTx any](ctx context.Context, w io.Writer, driver meowmxdriver.Driver[TTx], args []string, v *view[TTx]) error {
	store, err := meowmx.NewStore(driver, nil)
	if err != nil {
		return err
	}
	if _, err := store.Migrate(ctx, nil); err != nil {
		return err
	}
	if err := v.create(ctx); err != nil {
		return err
	}
	registry, err := newRegistry()
	if err != nil {
		return err
	}
	orders, err := meowmx.NewRepository[Order](store, "order", registry, &meowmx.RepositoryConfig{SnapshotEvery: 50})
	if err != nil {
		return err
	}
	a := &app[TTx]{out: w, store: store, orders: orders, view: v}

	// The subscription stops when runOn returns: cancel, then wait for it
	// (deferred calls run last first). When it stops on its own, with an
	// error, it cancels ctx with that error, which ends the command.
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	wg.Go(func() {
		if err := store.RunSubscription(ctx, v.subscription(registry)); err != nil {
			cancel(fmt.Errorf("read model: %w", err))
		}
	})

	if err := a.command(ctx, args); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	return nil
}

func (a *app[TTx]) command(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return a.story(ctx)
	}
	var (
		saved *meowmx.Aggregate[Order]
		err   error
	)
	switch cmd, args := args[0], args[1:]; cmd {
	case "place":
		var dollars, cents int
		if _, err := fmt.Sscanf(args[2], "%d.%d", &dollars, &cents); err != nil {
			return fmt.Errorf("total %q: want dollars.cents", args[2])
		}
		saved, err = a.orders.Update(ctx, args[0], place(args[1], dollars*100+cents))
	case "confirm":
		saved, err = a.orders.Update(ctx, args[0], confirm)
	case "ship":
		saved, err = a.orders.Update(ctx, args[0], ship(args[1]))
	case "show":
		o, err := a.orders.Load(ctx, args[0], nil)
		if err == nil {
			fmt.Fprintf(a.out, "%s: %+v (version %d)\n", o.ID(), o.State, o.Version())
		}
		return err
	}
	if err != nil {
		return err
	}
	var ids []string
	if saved != nil {
		ids = []string{saved.ID()}
	}
	if err := a.caughtUp(ctx); err != nil {
		return err
	}
	return a.view.print(ctx, a.out, ids)
}

// caughtUp waits until the read model has every order event committed
// before the call.
func (a *app[TTx]) caughtUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := a.store.WaitForSubscription(ctx, subscriptionName)
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return fmt.Errorf("read model not caught up after 30s; on PostgreSQL, subscriptions wait for every older "+
			"transaction that wrote to end: is a long transaction open in the database? %w", err)
	}
	return err
}

// story runs the README's story on fresh order ids.
func (a *app[TTx]) story(ctx context.Context) error {
	var b [3]byte
	_, _ = rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	id := func(n int) string { return fmt.Sprintf("order-%s-%d", run, n) }
	step := func(what string, err error) error {
		if errors.Is(err, ErrRefused) {
			fmt.Fprintf(a.out, "%-38s refused: %v\n", what, err)
			return nil
		}
		if err == nil {
			fmt.Fprintf(a.out, "%-38s ok\n", what)
		}
		return err
	}
	do := func(what, orderID string, decide func(*meowmx.Aggregate[Order]) error) error {
		_, err := a.orders.Update(ctx, orderID, decide)
		return step(what, err)
	}

	fmt.Fprintln(a.out, "== commands")
	for _, err := range []error{
		do("place "+id(1)+" (ann, 12.50)", id(1), place("ann", 1250)),
		do("place "+id(2)+" (bob, 99.00)", id(2), place("bob", 9900)),
		do("place "+id(3)+" (cat, 5.25)", id(3), place("cat", 525)),
		do("place "+id(1)+" again", id(1), place("ann", 1250)),
		do("ship "+id(2)+" before confirming", id(2), ship("DHL")),
		do("confirm "+id(1), id(1), confirm),
		do("ship "+id(1)+" by DHL", id(1), ship("DHL")),
	} {
		if err != nil {
			return err
		}
	}

	// Two clerks confirm order 2 at once: both load version 0, one saves
	// first, the other's save conflicts, reloads, sees the order
	// confirmed and has nothing left to do.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	decisions := make(chan string, 8)
	for clerk := range 2 {
		wg.Go(func() {
			_, errs[clerk] = a.orders.Update(ctx, id(2), func(o *meowmx.Aggregate[Order]) error {
				decisions <- fmt.Sprintf("clerk %d saw version %d (%s)", clerk, o.Version(), o.State.Status)
				return confirm(o)
			})
		})
	}
	wg.Wait()
	close(decisions)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n := 0
	for range decisions {
		n++
	}
	fmt.Fprintf(a.out, "%-38s ok, 2 clerks, %d decisions\n", "confirm "+id(2)+" twice at once", n)

	o, err := a.orders.Load(ctx, id(2), nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.out, "%s is %s at version %d: confirmed once\n", o.ID(), o.State.Status, o.Version())

	fmt.Fprintln(a.out, "\n== read model (orders_view, kept by subscription "+subscriptionName+")")
	if err := a.caughtUp(ctx); err != nil {
		return err
	}
	if err := a.view.print(ctx, a.out, []string{id(1), id(2), id(3)}); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "\nnext: go run ./examples/orders ship %s UPS\n", id(2))
	return nil
}
