package meowmx_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/meowmx/meowmx"
)

// ItemAdded is an event: a struct registered under an event type name.
type ItemAdded struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// itemAddedV1 is how older code wrote ItemAdded, as "ProductAdded" with
// the quantity as text.
type itemAddedV1 struct {
	Product string `json:"product"`
	Qty     string `json:"qty"`
}

func ExampleRegistry() {
	registry := meowmx.NewRegistry()
	if err := meowmx.RegisterEvent[ItemAdded](registry, "ItemAdded"); err != nil {
		panic(err)
	}
	// Events that older code wrote are upcast as they are read.
	err := registry.RegisterUpcaster("ProductAdded", meowmx.UpcastJSON("ItemAdded",
		func(old itemAddedV1) (ItemAdded, error) {
			var n int
			_, err := fmt.Sscan(old.Qty, &n)
			return ItemAdded{SKU: old.Product, Quantity: n}, err
		}))
	if err != nil {
		panic(err)
	}

	data, err := registry.Encode(ItemAdded{SKU: "cat-tree", Quantity: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println(data.Type, string(data.Data))

	// Decode what Store.ReadStream returns: a struct, never bytes.
	for _, recorded := range []*meowmx.RecordedEvent{
		{Type: "ItemAdded", Data: data.Data},
		{Type: "ProductAdded", Data: json.RawMessage(`{"product":"yarn","qty":"3"}`)},
		{StreamID: meowmx.StreamID{Type: "cart", ID: "c-1"}, Version: 2, Type: "CouponApplied", Data: json.RawMessage(`{}`)},
	} {
		event, err := registry.Decode(recorded)
		if errors.Is(err, meowmx.ErrUnknownEventType) {
			fmt.Println("skipped:", err) // events are history: skip what the code no longer knows
			continue
		}
		if err != nil {
			panic(err)
		}
		switch e := event.(type) {
		case ItemAdded:
			fmt.Printf("%d × %s\n", e.Quantity, e.SKU)
		}
	}
	// Output:
	// ItemAdded {"sku":"cat-tree","quantity":1}
	// 1 × cat-tree
	// 3 × yarn
	// skipped: meowmx: event cart/c-1@2: unknown event type "CouponApplied"
}
