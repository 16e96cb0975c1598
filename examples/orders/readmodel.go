package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meowmx/meowmx"
)

// The read model: one row per order in the table orders_view, for screens
// and queries, kept up to date from the events.

func createView(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+pgx.Identifier{schema, "orders_view"}.Sanitize()+` (
		id          TEXT    PRIMARY KEY,
		customer    TEXT    NOT NULL DEFAULT '',
		total_cents INTEGER NOT NULL DEFAULT 0,
		status      TEXT    NOT NULL DEFAULT '',
		carrier     TEXT    NOT NULL DEFAULT '',
		version     BIGINT  NOT NULL)`)
	return err
}

// project applies one event to the read model, in tx. It is idempotent:
// an event at or below the row's version changes nothing, so delivering an
// event again (at-least-once) is harmless.
func project(ctx context.Context, tx pgx.Tx, schema string, registry *meowmx.Registry, ev *meowmx.RecordedEvent) error {
	event, err := registry.Decode(ev)
	if err != nil {
		return err
	}
	table := pgx.Identifier{schema, "orders_view"}.Sanitize()
	set, args := "", []any{ev.StreamID.ID, ev.Version}
	switch e := event.(type) {
	case OrderPlaced:
		set, args = "customer = $3, total_cents = $4, status = 'placed'", append(args, e.Customer, e.TotalCents)
	case OrderConfirmed:
		set = "status = 'confirmed'"
	case OrderShipped:
		set, args = "status = 'shipped', carrier = $3", append(args, e.Carrier)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (id, version) VALUES ($1, -1) ON CONFLICT (id) DO NOTHING`, ev.StreamID.ID); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE `+table+` SET `+set+`, version = $2 WHERE id = $1 AND version < $2`, args...)
	return err
}

// catchUp projects the order events after *from, each in a transaction of
// its own, and moves *from past them.
//
// TODO(subscriptions): replace catchUp with a durable subscription on the
// "order" category whose handler calls project in the transaction that
// advances its checkpoint, so that the read model is updated exactly once,
// survives restarts, and follows new events as they are written. Until
// then, catchUp remembers its place in memory only.
func catchUp(ctx context.Context, store *meowmx.Store[pgx.Tx], pool *pgxpool.Pool, schema string, registry *meowmx.Registry, from *meowmx.Position) (int, error) {
	n := 0
	for ev, err := range store.IterAll(ctx, &meowmx.ReadAllOpts{After: *from, AggregateTypes: []string{"order"}}) {
		if err != nil {
			return n, err
		}
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return project(ctx, tx, schema, registry, ev) }); err != nil {
			return n, fmt.Errorf("project %s@%d: %w", ev.StreamID, ev.Version, err)
		}
		*from = ev.Position
		n++
	}
	return n, nil
}

// waitFor catches up until the read model has every order of versions
// (id -> version) at that version or later. Reads across streams stop
// below the oldest transaction still running in the database, so events
// may take a moment to appear.
func waitFor(ctx context.Context, store *meowmx.Store[pgx.Tx], pool *pgxpool.Pool, schema string, registry *meowmx.Registry, from *meowmx.Position, versions map[string]int64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if _, err := catchUp(ctx, store, pool, schema, registry, from); err != nil {
			return err
		}
		behind := 0
		for id, v := range versions {
			var got int64
			err := pool.QueryRow(ctx, `SELECT version FROM `+pgx.Identifier{schema, "orders_view"}.Sanitize()+` WHERE id = $1`, id).Scan(&got)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if errors.Is(err, pgx.ErrNoRows) || got < v {
				behind++
			}
		}
		if behind == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("read model: %d orders not caught up after 30s; reads across streams wait for every older transaction to end: is a long transaction open in the database? %w", behind, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func printView(ctx context.Context, w io.Writer, pool *pgxpool.Pool, schema string, ids []string) error {
	rows, _ := pool.Query(ctx, `SELECT id, customer, total_cents, status, carrier, version
		FROM `+pgx.Identifier{schema, "orders_view"}.Sanitize()+` WHERE id = ANY($1) OR COALESCE(cardinality($1::text[]), 0) = 0 ORDER BY id`, ids)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCUSTOMER\tTOTAL\tSTATUS\tCARRIER\tVERSION")
	var id, customer, status, carrier string
	var total, version int64
	_, err := pgx.ForEachRow(rows, []any{&id, &customer, &total, &status, &carrier, &version}, func() error {
		_, err := fmt.Fprintf(tw, "%s\t%s\t%d.%02d\t%s\t%s\t%d\n", id, customer, total/100, total%100, status, carrier, version)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}
