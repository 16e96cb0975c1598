package meowmxsqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// newTestStore is a test helper: a migrated store on a private database
// of its own, which closeStore throws away. Tests that each take one see
// none of each other's events, and run in parallel without a database
// server. In a test:
//
//	store, closeStore, err := newTestStore(t.Context())
//	if err != nil {
//		t.Fatal(err)
//	}
//	t.Cleanup(func() { _ = closeStore() })
func newTestStore(ctx context.Context) (store *meowmx.Store[*sql.Tx], closeStore func() error, err error) {
	driver, err := meowmxsqlite.Open(ctx, meowmxsqlite.Memory, nil)
	if err != nil {
		return nil, nil, err
	}
	store, err = meowmx.NewStore(driver, nil)
	if err == nil {
		_, err = store.Migrate(ctx, nil)
	}
	if err != nil {
		_ = driver.Close()
		return nil, nil, err
	}
	return store, driver.Close, nil
}

// Unit tests against meowmx need no server: each opens its own throwaway
// database with Memory.
func Example_testing() {
	ctx := context.Background()
	store, closeStore, err := newTestStore(ctx)
	if err != nil {
		log.Fatal(err) // t.Fatal in a test
	}
	defer closeStore() // t.Cleanup in a test

	cart := meowmx.StreamID{Type: "cart", ID: "cart-1"}
	if _, err := store.Append(ctx, cart, meowmx.NoStream,
		meowmx.EventData{Type: "ItemAdded", Data: json.RawMessage(`{"sku":"yarn"}`)}); err != nil {
		log.Fatal(err)
	}
	events, err := store.ReadStream(ctx, "cart-1", nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events {
		fmt.Println(ev.StreamID, ev.Version, ev.Type, string(ev.Data))
	}

	// Another test's store is another database: cart-1 is not in it.
	other, closeOther, err := newTestStore(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer closeOther()
	events, err = other.ReadStream(ctx, "cart-1", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("events in the other store:", len(events))
	// Output:
	// cart/cart-1 0 ItemAdded {"sku":"yarn"}
	// events in the other store: 0
}
