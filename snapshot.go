package meowmx

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// restore sets a's state from the latest usable snapshot at or below
// maxVersion (< 0: any). A snapshot of another aggregate type, snapshot
// version or state shape, or one that does not decode, is not used: the
// aggregate is then replayed from its first event.
func (r *Repository[T, TTx]) restore(ctx context.Context, exec meowmxdriver.Executor, a *Aggregate[T], maxVersion int64) error {
	row, err := exec.SnapshotGetLatest(ctx, &meowmxdriver.SnapshotGetLatestParams{AggregateID: a.id, MaxVersion: maxVersion})
	switch {
	case errors.Is(err, meowmxdriver.ErrNotFound), errors.Is(err, meowmxdriver.ErrInvalidInput):
		return nil
	case err != nil:
		return fmt.Errorf("meowmx: load %s/%s: read snapshot: %w", r.typ, a.id, err)
	}
	var reason string
	switch {
	case row.AggregateType != r.typ:
		reason = fmt.Sprintf("it is of aggregate type %q", row.AggregateType)
	case row.SnapshotVersion != int64(r.cfg.SnapshotVersion):
		reason = fmt.Sprintf("it has snapshot version %d, want %d", row.SnapshotVersion, r.cfg.SnapshotVersion)
	case row.StateShape != r.shape:
		reason = "the state's Go type changed since it was written"
	default:
		var state T
		if err := json.Unmarshal(row.Data, &state); err != nil {
			reason = "it does not decode: " + err.Error()
			break
		}
		a.State, a.version, a.snapshot = state, row.Version, row.Version
		return nil
	}
	r.logger.InfoContext(ctx, "meowmx: snapshot not used, replaying every event",
		"aggregate_type", r.typ, "aggregate_id", a.id, "snapshot_at", row.Version, "reason", reason)
	return nil
}

// saveSnapshot stores a's state at its version.
func (r *Repository[T, TTx]) saveSnapshot(ctx context.Context, exec meowmxdriver.Executor, a *Aggregate[T]) error {
	data, err := json.Marshal(&a.State)
	if err != nil {
		return fmt.Errorf("meowmx: snapshot %s/%s: encode state: %w", r.typ, a.id, err)
	}
	err = exec.SnapshotSave(ctx, &meowmxdriver.SnapshotSaveParams{
		AggregateID:     a.id,
		Version:         a.version,
		Data:            data,
		AggregateType:   r.typ,
		SnapshotVersion: int64(r.cfg.SnapshotVersion),
		StateShape:      r.shape,
	})
	if err != nil {
		return fmt.Errorf("meowmx: snapshot %s/%s at version %d: %w", r.typ, a.id, a.version, err)
	}
	a.snapshot = a.version
	return nil
}

// stateShape fingerprints the JSON shape of a state type: field names,
// JSON tags and kinds, recursively. A snapshot written with another shape
// is not used. It refuses types that a JSON snapshot cannot restore
// whole: unexported or `json:"-"` fields, interfaces, channels, functions.
func stateShape(t reflect.Type) (string, error) {
	var b strings.Builder
	if err := writeShape(&b, t, t.String(), map[reflect.Type]bool{}); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:12]), nil
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func writeShape(b *strings.Builder, t reflect.Type, path string, open map[reflect.Type]bool) error {
	pt := reflect.PointerTo(t)
	if t.Implements(jsonMarshalerType) || pt.Implements(jsonMarshalerType) ||
		t.Implements(textMarshalerType) || pt.Implements(textMarshalerType) {
		b.WriteString("marshaler(" + t.PkgPath() + "." + t.String() + ")")
		return nil
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		b.WriteString(t.Kind().String())
	case reflect.Pointer:
		b.WriteString("*")
		return writeShape(b, t.Elem(), path, open)
	case reflect.Slice:
		b.WriteString("[]")
		return writeShape(b, t.Elem(), path+"[]", open)
	case reflect.Array:
		b.WriteString("[" + strconv.Itoa(t.Len()) + "]")
		return writeShape(b, t.Elem(), path+"[]", open)
	case reflect.Map:
		b.WriteString("map[")
		if err := writeShape(b, t.Key(), path+"[key]", open); err != nil {
			return err
		}
		b.WriteString("]")
		return writeShape(b, t.Elem(), path+"[]", open)
	case reflect.Struct:
		if open[t] { // a recursive type
			b.WriteString("rec(" + t.PkgPath() + "." + t.Name() + ")")
			return nil
		}
		open[t] = true
		defer delete(open, t)
		b.WriteString("struct{")
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			fpath := path + "." + f.Name
			embeddedStruct := f.Anonymous && (f.Type.Kind() == reflect.Struct ||
				f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct)
			switch {
			case tag == "-":
				return fmt.Errorf("field %s is left out of JSON (json:\"-\"), so a snapshot would lose it", fpath)
			case !f.IsExported() && !embeddedStruct:
				return fmt.Errorf("field %s is unexported, so a JSON snapshot would lose it", fpath)
			}
			b.WriteString(f.Name + " " + strconv.Quote(tag) + " ")
			if err := writeShape(b, f.Type, fpath, open); err != nil {
				return err
			}
			b.WriteString(";")
		}
		b.WriteString("}")
	default:
		return fmt.Errorf("%s is of type %s, which a JSON snapshot cannot restore", path, t)
	}
	return nil
}
