package meowmx_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// amount is the data of the events of an account.
type amount struct {
	Amount int `json:"amount"`
}

// account reads an account's stream: its balance, and the version to
// append at when deciding on that balance.
func account(ctx context.Context, store *meowmx.Store[*sql.Tx], id string) (balance int, version int64) {
	events, err := store.ReadStream(ctx, id, nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events {
		var a amount
		if err := json.Unmarshal(ev.Data, &a); err != nil {
			log.Fatal(err)
		}
		switch ev.Type {
		case "Deposited":
			balance += a.Amount
		case "Withdrawn":
			balance -= a.Amount
		}
		version = ev.Version
	}
	return balance, version
}

func withdrawn(n int) meowmx.EventData {
	data, _ := json.Marshal(amount{n})
	return meowmx.EventData{Type: "Withdrawn", Data: data}
}

// Two writers decide on the same stream at once. Each appends at the
// version it read, so the second is refused, with nothing written, instead
// of withdrawing from a balance that is no longer there. It reads the
// stream again, decides again and retries. (Repository.Update runs this
// loop for aggregates.)
func ExampleConcurrencyError() {
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
	acc := meowmx.StreamID{Type: "account", ID: "acc-1"}
	if _, err := store.Append(ctx, acc, meowmx.NoStream,
		meowmx.EventData{Type: "Deposited", Data: json.RawMessage(`{"amount":50}`)}); err != nil {
		log.Fatal(err)
	}

	// Both writers read the account: 50, at version 0.
	annBalance, annVersion := account(ctx, store, "acc-1")
	bobBalance, bobVersion := account(ctx, store, "acc-1")
	fmt.Println("ann and bob see", annBalance, bobBalance)

	// Ann withdraws 30 first.
	if annBalance >= 30 {
		if _, err := store.Append(ctx, acc, meowmx.Exact(annVersion), withdrawn(30)); err != nil {
			log.Fatal(err)
		}
	}

	// Bob's withdrawal of 15 was decided at version 0: refused.
	if bobBalance >= 15 {
		_, err = store.Append(ctx, acc, meowmx.Exact(bobVersion), withdrawn(15))
	}
	fmt.Println(errors.Is(err, meowmx.ErrConcurrency))
	var conflict *meowmx.ConcurrencyError
	if errors.As(err, &conflict) {
		fmt.Println("expected", conflict.Expected, "actual", conflict.Actual)
	}

	// Bob reads again and decides again: 20 still covers 15.
	bobBalance, bobVersion = account(ctx, store, "acc-1")
	fmt.Println("bob sees", bobBalance, "at version", bobVersion)
	if bobBalance >= 15 {
		res, err := store.Append(ctx, acc, meowmx.Exact(bobVersion), withdrawn(15))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("bob withdrew 15 at version", res.Version)
	}
	balance, _ := account(ctx, store, "acc-1")
	fmt.Println("balance", balance)
	// Output:
	// ann and bob see 50 50
	// true
	// expected 0 actual 1
	// bob sees 20 at version 1
	// bob withdrew 15 at version 2
	// balance 5
}
