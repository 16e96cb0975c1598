package meowmx

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// Registry maps event type names to Go types and back, so that handlers
// and aggregates work with structs rather than bytes, and holds the
// upcasters that turn old event shapes into current ones as they are read.
//
// A Registry is a value: make one with NewRegistry, register the event
// types with RegisterEvent and pass it where events are encoded or decoded
// (NewRepository, subscription handlers). It is safe for concurrent use;
// register everything before use.
type Registry struct {
	mu        sync.RWMutex
	byName    map[string]reflect.Type
	byType    map[reflect.Type]string
	upcasters map[string]Upcaster
}

// Upcaster turns the JSON of an event of an old shape or an old type name
// into the current one, as it is read. It returns the event type and JSON
// to use instead; returning its input unchanged is fine.
//
// Upcasters chain: when the returned type has an upcaster of its own, that
// one runs next. An upcaster that returns its own type name runs once, so
// it can change the shape of an event whose name stays the same; it sees
// events of both the old and the current shape and must tell them apart.
type Upcaster func(data json.RawMessage) (eventType string, newData json.RawMessage, err error)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		byName:    map[string]reflect.Type{},
		byType:    map[reflect.Type]string{},
		upcasters: map[string]Upcaster{},
	}
}

// RegisterEvent registers the Go type E under the event type name: events
// of that type decode into an E, and an E (or *E) encodes to that type.
// E must not be a pointer or interface type. A name or a Go type registered
// twice gets an error matching ErrInvalidArgument.
func RegisterEvent[E any](r *Registry, name string) error {
	t := reflect.TypeFor[E]()
	if err := checkName("event type", name); err != nil {
		return err
	}
	if k := t.Kind(); k == reflect.Pointer || k == reflect.Interface {
		return &ArgumentError{Arg: "event Go type", Reason: fmt.Sprintf("%s is a %s; register the value type", t, k)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.byName[name]; ok {
		return &ArgumentError{Arg: "event type", Reason: fmt.Sprintf("%q is already registered to %s", name, prev)}
	}
	if prev, ok := r.byType[t]; ok {
		return &ArgumentError{Arg: "event Go type", Reason: fmt.Sprintf("%s is already registered as %q", t, prev)}
	}
	r.byName[name] = t
	r.byType[t] = name
	return nil
}

// RegisterUpcaster registers the upcaster of events stored with the type
// name eventType. One upcaster per name: a second gets an error matching
// ErrInvalidArgument.
func (r *Registry) RegisterUpcaster(eventType string, up Upcaster) error {
	if err := checkName("event type", eventType); err != nil {
		return err
	}
	if up == nil {
		return &ArgumentError{Arg: "upcaster", Reason: "nil"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.upcasters[eventType]; ok {
		return &ArgumentError{Arg: "upcaster", Reason: fmt.Sprintf("%q already has one", eventType)}
	}
	r.upcasters[eventType] = up
	return nil
}

// UpcastJSON makes an Upcaster from a typed conversion: the stored JSON is
// decoded into an Old, converted, and the New is encoded under newType.
func UpcastJSON[Old, New any](newType string, convert func(Old) (New, error)) Upcaster {
	return func(data json.RawMessage) (string, json.RawMessage, error) {
		var old Old
		if err := json.Unmarshal(data, &old); err != nil {
			return "", nil, err
		}
		n, err := convert(old)
		if err != nil {
			return "", nil, err
		}
		b, err := json.Marshal(n)
		return newType, b, err
	}
}

// Encode turns a registered event (an E or a *E) into EventData, with its
// type name and JSON. An unregistered Go type gets an error matching
// ErrInvalidArgument.
func (r *Registry) Encode(event any) (EventData, error) {
	name, err := r.nameOf(event)
	if err != nil {
		return EventData{}, err
	}
	b, err := json.Marshal(event)
	if err != nil {
		return EventData{}, &ArgumentError{Arg: "event", Reason: "cannot encode " + name + " as JSON", Err: err}
	}
	return EventData{Type: name, Data: b}, nil
}

func (r *Registry) nameOf(event any) (string, error) {
	v := reflect.ValueOf(event)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "", &ArgumentError{Arg: "event", Reason: "nil pointer"}
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return "", &ArgumentError{Arg: "event", Reason: "nil"}
	}
	r.mu.RLock()
	name, ok := r.byType[v.Type()]
	r.mu.RUnlock()
	if !ok {
		return "", &ArgumentError{Arg: "event", Reason: fmt.Sprintf("Go type %s is not registered (see RegisterEvent)", v.Type())}
	}
	return name, nil
}

// Decode upcasts a recorded event and decodes it into its registered Go
// type, returning a value of that type (an E, not a *E). An event whose
// type is not registered, after upcasting, gets an *UnknownEventTypeError
// (matching ErrUnknownEventType), which a caller may choose to skip. JSON
// that does not fit the type, and upcaster failures, get other errors.
func (r *Registry) Decode(ev *RecordedEvent) (any, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	typ, data, err := r.upcast(ev.Type, ev.Data)
	if err != nil {
		return nil, fmt.Errorf("meowmx: upcast event %s@%d of type %q: %w", ev.StreamID, ev.Version, ev.Type, err)
	}
	t, ok := r.byName[typ]
	if !ok {
		return nil, &UnknownEventTypeError{Type: typ, StoredType: ev.Type, Stream: ev.StreamID, Version: ev.Version}
	}
	v := reflect.New(t)
	if err := json.Unmarshal(data, v.Interface()); err != nil {
		return nil, fmt.Errorf("meowmx: decode event %s@%d of type %q into %s: %w", ev.StreamID, ev.Version, typ, t, err)
	}
	return v.Elem().Interface(), nil
}

// upcast applies the chain of upcasters to an event. The caller holds mu.
func (r *Registry) upcast(typ string, data json.RawMessage) (string, json.RawMessage, error) {
	var seen map[string]bool
	for {
		up, ok := r.upcasters[typ]
		if !ok {
			return typ, data, nil
		}
		if seen[typ] {
			return "", nil, errors.New("upcasters loop back to " + typ)
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[typ] = true
		next, nextData, err := up(data)
		if err != nil {
			return "", nil, err
		}
		if next == "" {
			return "", nil, fmt.Errorf("the upcaster of %q returned no event type", typ)
		}
		if next == typ {
			return next, nextData, nil
		}
		typ, data = next, nextData
	}
}
