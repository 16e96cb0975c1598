package meowmx_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// ToyPut is the one event of a toy box.
type ToyPut struct {
	Toy string `json:"toy"`
}

// ToyBox is the state of a toy box aggregate.
type ToyBox struct {
	Toys []string
}

// Apply changes the box by one event.
func (b *ToyBox) Apply(event any) error {
	switch e := event.(type) {
	case ToyPut:
		b.Toys = append(b.Toys, e.Toy)
	default:
		return fmt.Errorf("toy box: unexpected event %T", event)
	}
	return nil
}

// toyBoxSize is how many toys a box holds.
const toyBoxSize = 3

var errBoxFull = errors.New("the box is full")

// put is a command: it refuses a full box.
func put(toy string) func(*meowmx.Aggregate[ToyBox]) error {
	return func(a *meowmx.Aggregate[ToyBox]) error {
		if len(a.State.Toys) >= toyBoxSize {
			return fmt.Errorf("put %s in %s: %w", toy, a.ID(), errBoxFull)
		}
		return a.Emit(ToyPut{Toy: toy})
	}
}

// Update loads, decides and saves; when another writer saved the same
// aggregate in between, it loads again and decides again on the newer
// state, so that the decision is never made on a stale one.
func ExampleRepository_Update() {
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
	registry := meowmx.NewRegistry()
	if err := meowmx.RegisterEvent[ToyPut](registry, "ToyPut"); err != nil {
		log.Fatal(err)
	}
	boxes, err := meowmx.NewRepository[ToyBox](store, "toybox", registry, nil)
	if err != nil {
		log.Fatal(err)
	}

	// A box without events: Update starts from a new aggregate, and saving
	// creates the stream.
	if _, err := boxes.Update(ctx, "box-1", put("ball")); err != nil {
		log.Fatal(err)
	}

	attempts := 0
	box, err := boxes.Update(ctx, "box-1", func(a *meowmx.Aggregate[ToyBox]) error {
		attempts++
		fmt.Printf("attempt %d: %v at version %d\n", attempts, a.State.Toys, a.Version())
		if attempts == 1 {
			// Another writer puts a toy in between this load and this
			// save. (decide must not write: this stands in for another
			// goroutine or process, to make the conflict certain.)
			if _, err := boxes.Update(ctx, "box-1", put("yarn")); err != nil {
				return err
			}
		}
		return put("mouse")(a)
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("saved: %v at version %d\n", box.State.Toys, box.Version())

	// A command's error is returned as is, and nothing is saved or retried.
	_, err = boxes.Update(ctx, "box-1", put("bell"))
	fmt.Println(err)
	fmt.Println(errors.Is(err, errBoxFull))
	// Output:
	// attempt 1: [ball] at version 0
	// attempt 2: [ball yarn] at version 1
	// saved: [ball yarn mouse] at version 2
	// put bell in box-1: the box is full
	// true
}
