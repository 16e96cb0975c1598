package meowmx_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// Keep a read model, a count of events by type, with a subscription whose
// handler writes it in the transaction it is given: the counts commit
// together with the subscription's checkpoint, so each event is counted
// exactly once, even when a worker stops halfway.
func ExampleStore_RunSubscription() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "meowmx-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	driver, err := meowmxsqlite.Open(ctx, filepath.Join(dir, "events.db"), nil)
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
	db := driver.DB()
	if _, err := db.ExecContext(ctx, `CREATE TABLE counts (event_type TEXT PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		log.Fatal(err)
	}

	// Run the subscription until runCtx is cancelled.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- store.RunSubscription(runCtx, &meowmx.SubscriptionConfig[*sql.Tx]{
			Name:           "counts",
			AggregateTypes: []string{"cat"},
			Handler: meowmx.HandlerFunc[*sql.Tx](func(ctx context.Context, tx *sql.Tx, ev *meowmx.RecordedEvent) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO counts (event_type, n) VALUES (?, 1)
					ON CONFLICT (event_type) DO UPDATE SET n = n + 1`, ev.Type)
				return err
			}),
		})
	}()

	for _, id := range []string{"felix", "tom"} {
		_, err := store.Append(ctx, meowmx.StreamID{Type: "cat", ID: id}, meowmx.NoStream,
			meowmx.EventData{Type: "Adopted", Data: json.RawMessage(`{}`)},
			meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{"loud":true}`)})
		if err != nil {
			log.Fatal(err)
		}
	}
	_, err = store.Append(ctx, meowmx.StreamID{Type: "cat", ID: "felix"}, meowmx.Exact(1),
		meowmx.EventData{Type: "Meowed", Data: json.RawMessage(`{"loud":false}`)})
	if err != nil {
		log.Fatal(err)
	}
	// A dog: not a cat, so not counted.
	_, err = store.Append(ctx, meowmx.StreamID{Type: "dog", ID: "rex"}, meowmx.NoStream,
		meowmx.EventData{Type: "Adopted", Data: json.RawMessage(`{}`)})
	if err != nil {
		log.Fatal(err)
	}

	// Wait until the subscription has handled every event appended so far.
	if err := store.WaitForSubscription(ctx, "counts"); err != nil {
		log.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT event_type, n FROM counts ORDER BY event_type`)
	if err != nil {
		log.Fatal(err)
	}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			log.Fatal(err)
		}
		fmt.Println(typ, n)
	}
	if err := rows.Err(); err != nil {
		log.Fatal(err)
	}
	rows.Close()

	// Shut down: cancel the context and wait for RunSubscription to return.
	stop()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	fmt.Println("stopped")
	// Output:
	// Adopted 2
	// Meowed 3
	// stopped
}
