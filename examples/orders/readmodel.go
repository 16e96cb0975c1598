package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"

	"github.com/meowmx/meowmx"
)

// The read model: one row per order in the table orders_view, for screens
// and queries, kept up to date by a durable subscription to the "order"
// category. The subscription's handler writes the row in the transaction
// in which the subscription's checkpoint advances, so each event changes
// the table exactly once, and a restart goes on where the last run
// stopped.

// subscriptionName names the read model's subscription and its checkpoint.
const subscriptionName = "orders_view"

// view is the orders_view table on either backend. Its statements are the
// same on PostgreSQL and SQLite (both take $n parameters); only the calls
// that run them differ.
type view[TTx any] struct {
	table  string                                                             // quoted; schema-qualified on PostgreSQL
	exec   func(ctx context.Context, query string) error                      // outside a transaction
	execTx func(ctx context.Context, tx TTx, query string, args ...any) error // in the handler's transaction
	list   func(ctx context.Context, query string) ([]viewRow, error)
}

// viewRow is a row of orders_view, its fields in the table's order.
type viewRow struct {
	ID         string
	Customer   string
	TotalCents int64
	Status     string
	Carrier    string
	Version    int64
}

func (v *view[TTx]) create(ctx context.Context) error {
	return v.exec(ctx, `CREATE TABLE IF NOT EXISTS `+v.table+` (
		id          TEXT    PRIMARY KEY,
		customer    TEXT    NOT NULL,
		total_cents BIGINT  NOT NULL,
		status      TEXT    NOT NULL,
		carrier     TEXT    NOT NULL DEFAULT '',
		version     BIGINT  NOT NULL)`)
}

// subscription returns the configuration of the subscription that keeps
// the view up to date.
func (v *view[TTx]) subscription(registry *meowmx.Registry) *meowmx.SubscriptionConfig[TTx] {
	return &meowmx.SubscriptionConfig[TTx]{
		Name:           subscriptionName,
		AggregateTypes: []string{"order"},
		Handler: meowmx.HandlerFunc[TTx](func(ctx context.Context, tx TTx, ev *meowmx.RecordedEvent) error {
			return v.project(ctx, tx, registry, ev)
		}),
	}
}

// project applies one event to the read model, in tx, the transaction in
// which the subscription's checkpoint moves past the event. It needs no
// guard against seeing an event twice: the subscription hands each event
// to it exactly once, as far as the table can tell. Were it not so, the
// INSERT of an order placed again would fail on the primary key.
func (v *view[TTx]) project(ctx context.Context, tx TTx, registry *meowmx.Registry, ev *meowmx.RecordedEvent) error {
	event, err := registry.Decode(ev)
	if err != nil {
		return err
	}
	id := ev.StreamID.ID
	switch e := event.(type) {
	case OrderPlaced:
		return v.execTx(ctx, tx, `INSERT INTO `+v.table+` (id, customer, total_cents, status, version)
			VALUES ($1, $2, $3, 'placed', $4)`, id, e.Customer, e.TotalCents, ev.Version)
	case OrderConfirmed:
		return v.execTx(ctx, tx, `UPDATE `+v.table+` SET status = 'confirmed', version = $2 WHERE id = $1`, id, ev.Version)
	case OrderShipped:
		return v.execTx(ctx, tx, `UPDATE `+v.table+` SET status = 'shipped', carrier = $3, version = $2 WHERE id = $1`,
			id, ev.Version, e.Carrier)
	}
	return fmt.Errorf("orders_view: unexpected event %T", event)
}

// rows returns the rows of the orders in ids, or every row when ids is
// empty, by id.
func (v *view[TTx]) rows(ctx context.Context, ids []string) ([]viewRow, error) {
	all, err := v.list(ctx, `SELECT id, customer, total_cents, status, carrier, version FROM `+v.table+` ORDER BY id`)
	if err != nil || len(ids) == 0 {
		return all, err
	}
	return slices.DeleteFunc(all, func(r viewRow) bool { return !slices.Contains(ids, r.ID) }), nil
}

func (v *view[TTx]) print(ctx context.Context, w io.Writer, ids []string) error {
	rows, err := v.rows(ctx, ids)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCUSTOMER\tTOTAL\tSTATUS\tCARRIER\tVERSION")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d.%02d\t%s\t%s\t%d\n", r.ID, r.Customer, r.TotalCents/100, r.TotalCents%100, r.Status, r.Carrier, r.Version)
	}
	return tw.Flush()
}
