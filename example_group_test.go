package meowmx_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"
	"sort"
	"sync"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// Scale a subscription out with a consumer group: two workers (they could
// be in two processes, or on two machines) share its four partitions, each
// stream handled in order by the worker that owns its partition.
func ExampleSubscriptionConfig_partitions() {
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
	for _, id := range []string{"felix", "tom", "garfield", "salem"} {
		_, err := store.Append(ctx, meowmx.StreamID{Type: "cat", ID: id}, meowmx.NoStream,
			meowmx.EventData{Type: "Adopted", Data: json.RawMessage(`{}`)},
			meowmx.EventData{Type: "Fed", Data: json.RawMessage(`{}`)})
		if err != nil {
			log.Fatal(err)
		}
	}

	var mu sync.Mutex
	seen := map[string][]string{} // stream → event types, in the order handled
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := store.RunSubscription(runCtx, &meowmx.SubscriptionConfig[*sql.Tx]{
				Name:       "feeding",
				Partitions: 4,
				Handler: meowmx.HandlerFunc[*sql.Tx](func(_ context.Context, _ *sql.Tx, ev *meowmx.RecordedEvent) error {
					mu.Lock()
					defer mu.Unlock()
					seen[ev.StreamID.ID] = append(seen[ev.StreamID.ID], ev.Type)
					return nil
				}),
			})
			if err != nil {
				log.Print(err)
			}
		}()
	}
	if err := store.WaitForSubscription(ctx, "feeding"); err != nil {
		log.Fatal(err)
	}
	stop()
	wg.Wait()

	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Printf("%s (partition %d): %v\n", id, meowmx.PartitionOf(id, 4), seen[id])
	}
	// Output:
	// felix (partition 0): [Adopted Fed]
	// garfield (partition 2): [Adopted Fed]
	// salem (partition 2): [Adopted Fed]
	// tom (partition 2): [Adopted Fed]
}
