package meowmx_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/meowmx/meowmx"
)

// The events of an order.
type (
	OrderPlaced struct {
		Customer   string `json:"customer"`
		TotalCents int    `json:"total_cents"`
	}
	OrderConfirmed struct{}
	OrderShipped   struct {
		Carrier string `json:"carrier"`
	}
)

// Order is the state of an order aggregate, built by applying its events.
type Order struct {
	Customer string
	Status   string
}

// Apply changes the order by one event. It decides nothing: events happened.
func (o *Order) Apply(event any) error {
	switch e := event.(type) {
	case OrderPlaced:
		o.Customer, o.Status = e.Customer, "placed"
	case OrderConfirmed:
		o.Status = "confirmed"
	case OrderShipped:
		o.Status = "shipped by " + e.Carrier
	default:
		return fmt.Errorf("order: unexpected event %T", event)
	}
	return nil
}

var errNotConfirmed = errors.New("order is not confirmed")

// ship is a command: it checks the state, then emits an event.
func ship(carrier string) func(*meowmx.Aggregate[Order]) error {
	return func(a *meowmx.Aggregate[Order]) error {
		if a.State.Status != "confirmed" {
			return fmt.Errorf("ship %s: %w (it is %s)", a.ID(), errNotConfirmed, a.State.Status)
		}
		return a.Emit(OrderShipped{Carrier: carrier})
	}
}

func ExampleRepository() {
	ctx := context.Background()
	store, drop := exampleStore() // outside the example's scope: a migrated store
	defer drop()

	registry := meowmx.NewRegistry()
	_ = meowmx.RegisterEvent[OrderPlaced](registry, "OrderPlaced")
	_ = meowmx.RegisterEvent[OrderConfirmed](registry, "OrderConfirmed")
	_ = meowmx.RegisterEvent[OrderShipped](registry, "OrderShipped")
	orders, err := meowmx.NewRepository[Order](store, "order", registry, &meowmx.RepositoryConfig{SnapshotEvery: 100})
	if err != nil {
		panic(err)
	}

	// Place: a new aggregate; saving it creates its stream.
	order := orders.New("order-1")
	if err := order.Emit(OrderPlaced{Customer: "ann", TotalCents: 1250}); err != nil {
		panic(err)
	}
	fmt.Println("pending:", len(order.Pending()), "to save at", order.ExpectedVersion())
	if err := orders.Save(ctx, order); err != nil {
		panic(err)
	}

	// Shipping before confirming is refused by the command: nothing is saved.
	_, err = orders.Update(ctx, "order-1", ship("DHL"))
	fmt.Println(err)

	// Confirm, then ship: Update loads, decides, saves, and retries on
	// a version conflict.
	_, err = orders.Update(ctx, "order-1", func(a *meowmx.Aggregate[Order]) error {
		return a.Emit(OrderConfirmed{})
	})
	if err != nil {
		panic(err)
	}
	shipped, err := orders.Update(ctx, "order-1", ship("DHL"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s is %s, version %d\n", shipped.ID(), shipped.State.Status, shipped.Version())

	// As it was at version 0.
	placed, err := orders.Load(ctx, "order-1", &meowmx.LoadOpts{Version: new(int64(0))})
	if err != nil {
		panic(err)
	}
	fmt.Printf("at version 0 it was %s for %s\n", placed.State.Status, placed.State.Customer)
	// Output:
	// pending: 1 to save at no-stream
	// ship order-1: order is not confirmed (it is placed)
	// order-1 is shipped by DHL, version 2
	// at version 0 it was placed for ann
}
