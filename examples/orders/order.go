package main

import (
	"errors"
	"fmt"

	"github.com/meowmx/meowmx"
)

// The events of an order, as stored: the registry maps each to its type
// name.
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

func newRegistry() (*meowmx.Registry, error) {
	r := meowmx.NewRegistry()
	return r, errors.Join(
		meowmx.RegisterEvent[OrderPlaced](r, "OrderPlaced"),
		meowmx.RegisterEvent[OrderConfirmed](r, "OrderConfirmed"),
		meowmx.RegisterEvent[OrderShipped](r, "OrderShipped"),
	)
}

// Status is where an order is in its life.
type Status string

// The statuses of an order.
const (
	StatusNew       Status = "" // no events yet
	StatusPlaced    Status = "placed"
	StatusConfirmed Status = "confirmed"
	StatusShipped   Status = "shipped"
)

// Order is the state of an order aggregate. Its fields are exported so
// that snapshots can store it as JSON.
type Order struct {
	Customer   string
	TotalCents int
	Status     Status
	Carrier    string
}

// Apply changes the order by one event that happened. It checks nothing:
// the commands below decide.
func (o *Order) Apply(event any) error {
	switch e := event.(type) {
	case OrderPlaced:
		o.Customer, o.TotalCents, o.Status = e.Customer, e.TotalCents, StatusPlaced
	case OrderConfirmed:
		o.Status = StatusConfirmed
	case OrderShipped:
		o.Status, o.Carrier = StatusShipped, e.Carrier
	default:
		return fmt.Errorf("order: unexpected event %T", event)
	}
	return nil
}

// ErrRefused is returned by a command that the order's state forbids.
var ErrRefused = errors.New("refused")

// The commands: each checks the state, then emits events. They may run
// more than once (Repository.Update retries on a conflict), so they do
// nothing but emit.

func place(customer string, totalCents int) func(*meowmx.Aggregate[Order]) error {
	return func(a *meowmx.Aggregate[Order]) error {
		switch {
		case a.State.Status != StatusNew:
			return fmt.Errorf("place %s: %w: it is %s already", a.ID(), ErrRefused, a.State.Status)
		case totalCents <= 0:
			return fmt.Errorf("place %s: %w: total %d", a.ID(), ErrRefused, totalCents)
		}
		return a.Emit(OrderPlaced{Customer: customer, TotalCents: totalCents})
	}
}

func confirm(a *meowmx.Aggregate[Order]) error {
	switch a.State.Status {
	case StatusConfirmed:
		return nil // already done: confirming twice is harmless
	case StatusPlaced:
		return a.Emit(OrderConfirmed{})
	}
	return fmt.Errorf("confirm %s: %w: it is %q", a.ID(), ErrRefused, a.State.Status)
}

func ship(carrier string) func(*meowmx.Aggregate[Order]) error {
	return func(a *meowmx.Aggregate[Order]) error {
		if a.State.Status != StatusConfirmed {
			return fmt.Errorf("ship %s: %w: it is %q, not confirmed", a.ID(), ErrRefused, a.State.Status)
		}
		return a.Emit(OrderShipped{Carrier: carrier})
	}
}
