// Command orders is the story of meowmx's README in Go: an order aggregate
// with place, confirm and ship commands, saved with optimistic
// concurrency, and an orders read model in a table, kept up to date from
// the events.
//
//	go run ./examples/orders                  # the whole story
//	go run ./examples/orders place o-1 ann 12.50
//	go run ./examples/orders confirm o-1
//	go run ./examples/orders ship o-1 DHL
//	go run ./examples/orders show o-1
//	go run ./examples/orders list
//
// It needs PostgreSQL: -db, else $MEOWMX_DATABASE_URL, else
// postgres://postgres@127.0.0.1:5432/postgres. Its tables live in the
// schema given by -schema (orders_example).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxpgx"
)

type app struct {
	pool     *pgxpool.Pool
	schema   string
	store    *meowmx.Store[pgx.Tx]
	registry *meowmx.Registry
	orders   *meowmx.Repository[Order, pgx.Tx]
	seen     meowmx.Position // how far the read model has caught up
}

func main() {
	url := os.Getenv("MEOWMX_DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	dbURL := flag.String("db", url, "PostgreSQL URL")
	schema := flag.String("schema", "orders_example", "PostgreSQL schema of the tables")
	flag.Parse()
	if err := run(context.Background(), *dbURL, *schema, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dbURL, schema string, args []string) error {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	a, err := open(ctx, pool, schema)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return a.story(ctx)
	}
	cmd, args := args[0], args[1:]
	need := map[string]int{"place": 3, "confirm": 1, "ship": 2, "show": 1, "list": 0}
	if n, ok := need[cmd]; !ok || len(args) != n {
		return fmt.Errorf("usage: orders [place ID CUSTOMER TOTAL | confirm ID | ship ID CARRIER | show ID | list]")
	}
	var saved *meowmx.Aggregate[Order]
	switch cmd {
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
		var o *meowmx.Aggregate[Order]
		o, err = a.orders.Load(ctx, args[0], nil)
		if err == nil {
			fmt.Printf("%s: %+v (version %d)\n", o.ID(), o.State, o.Version())
		}
		return err
	}
	if err != nil {
		return err
	}
	var ids []string
	wait := map[string]int64{}
	if saved != nil {
		ids, wait[saved.ID()] = []string{saved.ID()}, saved.Version()
	}
	if err := waitFor(ctx, a.store, a.pool, a.schema, a.registry, &a.seen, wait); err != nil {
		return err
	}
	return printView(ctx, os.Stdout, a.pool, a.schema, ids)
}

func open(ctx context.Context, pool *pgxpool.Pool, schema string) (*app, error) {
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	if err != nil {
		return nil, err
	}
	store, err := meowmx.NewStore(driver, nil)
	if err != nil {
		return nil, err
	}
	if _, err := store.Migrate(ctx, nil); err != nil {
		return nil, err
	}
	if err := createView(ctx, pool, schema); err != nil {
		return nil, err
	}
	registry, err := newRegistry()
	if err != nil {
		return nil, err
	}
	orders, err := meowmx.NewRepository[Order](store, "order", registry, &meowmx.RepositoryConfig{SnapshotEvery: 50})
	if err != nil {
		return nil, err
	}
	return &app{pool: pool, schema: schema, store: store, registry: registry, orders: orders}, nil
}

// story runs the README's story on fresh order ids.
func (a *app) story(ctx context.Context) error {
	var b [3]byte
	_, _ = rand.Read(b[:])
	run := hex.EncodeToString(b[:])
	id := func(n int) string { return fmt.Sprintf("order-%s-%d", run, n) }
	step := func(what string, err error) error {
		if errors.Is(err, ErrRefused) {
			fmt.Printf("%-38s refused: %v\n", what, err)
			return nil
		}
		if err == nil {
			fmt.Printf("%-38s ok\n", what)
		}
		return err
	}
	do := func(what, orderID string, decide func(*meowmx.Aggregate[Order]) error) error {
		_, err := a.orders.Update(ctx, orderID, decide)
		return step(what, err)
	}

	fmt.Println("== commands")
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
	fmt.Printf("%-38s ok, 2 clerks, %d decisions\n", "confirm "+id(2)+" twice at once", n)

	o, err := a.orders.Load(ctx, id(2), nil)
	if err != nil {
		return err
	}
	fmt.Printf("%s is %s at version %d: confirmed once\n", o.ID(), o.State.Status, o.Version())

	fmt.Println("\n== read model (orders_view)")
	ids := []string{id(1), id(2), id(3)}
	wait := map[string]int64{}
	for _, id := range ids {
		o, err := a.orders.Load(ctx, id, nil)
		if err != nil {
			return err
		}
		wait[id] = o.Version()
	}
	if err := waitFor(ctx, a.store, a.pool, a.schema, a.registry, &a.seen, wait); err != nil {
		return err
	}
	if err := printView(ctx, os.Stdout, a.pool, a.schema, ids); err != nil {
		return err
	}
	fmt.Printf("\nnext: go run ./examples/orders ship %s UPS\n", id(2))
	return nil
}
