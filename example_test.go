package meowmx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// Append events to a new stream and read them back. A writer that
// expected an older version is refused: see ExampleConcurrencyError.
func Example_appendAndRead() {
	ctx := context.Background()
	// A throwaway SQLite database; meowmxpgx.New(pool, nil) for PostgreSQL.
	driver, err := meowmxsqlite.Open(ctx, meowmxsqlite.Memory, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer driver.Close()
	store, err := meowmx.NewStore(driver, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Migrate(ctx, nil); err != nil {
		log.Fatal(err)
	}

	order := meowmx.StreamID{Type: "order", ID: "order-1"}
	_, err = store.Append(ctx, order, meowmx.NoStream,
		meowmx.EventData{Type: "OrderPlaced", Data: json.RawMessage(`{"item":"catnip"}`)},
		meowmx.EventData{Type: "OrderPaid", Data: json.RawMessage(`{"amount":5}`)},
	)
	if err != nil {
		log.Fatal(err)
	}
	events, err := store.ReadStream(ctx, "order-1", nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events {
		fmt.Println(ev.Version, ev.Type, string(ev.Data))
	}
	// Output:
	// 0 OrderPlaced {"item":"catnip"}
	// 1 OrderPaid {"amount":5}
}

// Append events and update a table of the application in one transaction:
// both commit, or neither.
func ExampleStore_AppendTx() {
	ctx := context.Background()
	driver, err := meowmxsqlite.Open(ctx, meowmxsqlite.Memory, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer driver.Close()
	store, err := meowmx.NewStore(driver, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Migrate(ctx, nil); err != nil {
		log.Fatal(err)
	}
	db := driver.DB() // begin transactions for AppendTx here
	if _, err := db.ExecContext(ctx, `CREATE TABLE order_totals (id TEXT PRIMARY KEY, total INTEGER)`); err != nil {
		log.Fatal(err)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback() // does nothing after Commit
	_, err = store.AppendTx(ctx, tx, meowmx.StreamID{Type: "order", ID: "order-1"}, meowmx.NoStream,
		meowmx.EventData{Type: "OrderPaid", Data: json.RawMessage(`{"amount":5}`)})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO order_totals VALUES ('order-1', 5)`); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	info, err := store.Stream(ctx, "order-1")
	if err != nil {
		log.Fatal(err)
	}
	var total int
	if err := db.QueryRowContext(ctx, `SELECT total FROM order_totals WHERE id = 'order-1'`).Scan(&total); err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", info.Version, "total", total)
	// Output:
	// version 0 total 5
}
