package meowmx_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meowmx/meowmx"
)

type placed struct {
	Customer string `json:"customer"`
}

type placedV3 struct {
	Buyer string `json:"buyer"`
}

func TestRegistryRegister(t *testing.T) {
	t.Parallel()
	r := meowmx.NewRegistry()
	require.NoError(t, meowmx.RegisterEvent[placed](r, "Placed"))
	for _, tc := range []struct {
		name string
		err  error
		arg  string
	}{
		{"same name", meowmx.RegisterEvent[placedV3](r, "Placed"), "event type"},
		{"same Go type", meowmx.RegisterEvent[placed](r, "Placed2"), "event Go type"},
		{"pointer", meowmx.RegisterEvent[*placedV3](r, "P3"), "event Go type"},
		{"interface", meowmx.RegisterEvent[any](r, "Any"), "event Go type"},
		{"empty name", meowmx.RegisterEvent[placedV3](r, ""), "event type"},
		{"upcaster twice", func() error {
			up := func(d json.RawMessage) (string, json.RawMessage, error) { return "Placed", d, nil }
			require.NoError(t, r.RegisterUpcaster("Old", up))
			return r.RegisterUpcaster("Old", up)
		}(), "upcaster"},
		{"nil upcaster", r.RegisterUpcaster("Older", nil), "upcaster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, tc.err, meowmx.ErrInvalidArgument)
			var ae *meowmx.ArgumentError
			require.ErrorAs(t, tc.err, &ae)
			require.Equal(t, tc.arg, ae.Arg)
		})
	}
}

func TestRegistryEncodeDecode(t *testing.T) {
	t.Parallel()
	r := meowmx.NewRegistry()
	require.NoError(t, meowmx.RegisterEvent[placed](r, "Placed"))

	for _, in := range []any{placed{Customer: "ann"}, &placed{Customer: "ann"}} {
		d, err := r.Encode(in)
		require.NoError(t, err)
		require.Equal(t, "Placed", d.Type)
		require.JSONEq(t, `{"customer":"ann"}`, string(d.Data))
	}
	for _, bad := range []any{nil, (*placed)(nil), placedV3{}, 42} {
		_, err := r.Encode(bad)
		require.ErrorIs(t, err, meowmx.ErrInvalidArgument, "%#v", bad)
	}

	v, err := r.Decode(&meowmx.RecordedEvent{Type: "Placed", Data: json.RawMessage(`{"customer":"bob"}`)})
	require.NoError(t, err)
	require.Equal(t, placed{Customer: "bob"}, v, "decodes to the value type")

	_, err = r.Decode(&meowmx.RecordedEvent{Type: "Placed", Data: json.RawMessage(`{"customer":7}`)})
	require.Error(t, err)
	require.NotErrorIs(t, err, meowmx.ErrUnknownEventType)

	stream := meowmx.StreamID{Type: "order", ID: "o-1"}
	_, err = r.Decode(&meowmx.RecordedEvent{StreamID: stream, Version: 3, Type: "Gone", Data: json.RawMessage(`{}`)})
	require.ErrorIs(t, err, meowmx.ErrUnknownEventType)
	var ue *meowmx.UnknownEventTypeError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, &meowmx.UnknownEventTypeError{Type: "Gone", StoredType: "Gone", Stream: stream, Version: 3}, ue)
	require.EqualError(t, err, `meowmx: event order/o-1@3: unknown event type "Gone"`)
}

func TestRegistryUpcast(t *testing.T) {
	t.Parallel()
	r := meowmx.NewRegistry()
	require.NoError(t, meowmx.RegisterEvent[placedV3](r, "PlacedV3"))
	calls := map[string]int{}
	var mu sync.Mutex
	count := func(name string) { mu.Lock(); calls[name]++; mu.Unlock() }
	// V1 -> V2 -> PlacedV3, and PlacedV3 changed shape in place
	// (customer -> buyer).
	require.NoError(t, r.RegisterUpcaster("PlacedV1", func(d json.RawMessage) (string, json.RawMessage, error) {
		count("V1")
		return "PlacedV2", d, nil
	}))
	require.NoError(t, r.RegisterUpcaster("PlacedV2", func(d json.RawMessage) (string, json.RawMessage, error) {
		count("V2")
		return "PlacedV3", d, nil
	}))
	require.NoError(t, r.RegisterUpcaster("PlacedV3", func(d json.RawMessage) (string, json.RawMessage, error) {
		count("V3")
		var m map[string]string
		if err := json.Unmarshal(d, &m); err != nil {
			return "", nil, err
		}
		if c, ok := m["customer"]; ok {
			m = map[string]string{"buyer": c}
		}
		b, err := json.Marshal(m)
		return "PlacedV3", b, err
	}))
	for _, typ := range []string{"PlacedV1", "PlacedV2", "PlacedV3"} {
		v, err := r.Decode(&meowmx.RecordedEvent{Type: typ, Data: json.RawMessage(`{"customer":"ann"}`)})
		require.NoError(t, err, typ)
		require.Equal(t, placedV3{Buyer: "ann"}, v, typ)
	}
	v, err := r.Decode(&meowmx.RecordedEvent{Type: "PlacedV3", Data: json.RawMessage(`{"buyer":"bob"}`)})
	require.NoError(t, err)
	require.Equal(t, placedV3{Buyer: "bob"}, v)
	require.Equal(t, map[string]int{"V1": 1, "V2": 2, "V3": 4}, calls, "each upcaster runs once per event")

	// Loops, failures, and upcasting to an unknown type.
	require.NoError(t, r.RegisterUpcaster("Ping", func(d json.RawMessage) (string, json.RawMessage, error) { return "Pong", d, nil }))
	require.NoError(t, r.RegisterUpcaster("Pong", func(d json.RawMessage) (string, json.RawMessage, error) { return "Ping", d, nil }))
	_, err = r.Decode(&meowmx.RecordedEvent{Type: "Ping", Data: json.RawMessage(`{}`)})
	require.ErrorContains(t, err, "loop")
	require.NoError(t, r.RegisterUpcaster("Nameless", func(d json.RawMessage) (string, json.RawMessage, error) { return "", d, nil }))
	_, err = r.Decode(&meowmx.RecordedEvent{Type: "Nameless", Data: json.RawMessage(`{}`)})
	require.ErrorContains(t, err, "no event type")
	require.NoError(t, r.RegisterUpcaster("Failing", meowmx.UpcastJSON("PlacedV3", func(p placed) (placedV3, error) {
		return placedV3{}, fmt.Errorf("no customer %q", p.Customer)
	})))
	_, err = r.Decode(&meowmx.RecordedEvent{Type: "Failing", Data: json.RawMessage(`{"customer":"x"}`)})
	require.ErrorContains(t, err, `no customer "x"`)
	require.NoError(t, r.RegisterUpcaster("Retired", func(d json.RawMessage) (string, json.RawMessage, error) { return "Unknown", d, nil }))
	_, err = r.Decode(&meowmx.RecordedEvent{Type: "Retired", Data: json.RawMessage(`{}`)})
	var ue *meowmx.UnknownEventTypeError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, "Unknown", ue.Type)
	require.Equal(t, "Retired", ue.StoredType)
}

func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r := meowmx.NewRegistry()
	require.NoError(t, meowmx.RegisterEvent[placed](r, "Placed"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			_, err := r.Decode(&meowmx.RecordedEvent{Type: "Placed", Data: json.RawMessage(`{}`)})
			errs <- err
		})
		wg.Go(func() {
			errs <- r.RegisterUpcaster(fmt.Sprintf("Old%d", i), func(d json.RawMessage) (string, json.RawMessage, error) { return "Placed", d, nil })
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
