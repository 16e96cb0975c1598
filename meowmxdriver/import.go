package meowmxdriver

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/meowmx/meowmx/meowmxtype"
)

// ErrImportRefused is returned by Importer.EventImport when the events
// cannot go into the store as they are: a stream of another aggregate type,
// versions with gaps or repeats, or a stream's first imported version more
// than one past its stored version. Nothing of the batch was written.
var ErrImportRefused = errors.New("meowmxdriver: import refused")

// Importer is an Executor that loads events in bulk (COPY on PostgreSQL).
type Importer interface {
	// EventImport writes batches of events, each in one transaction, in
	// the order given, each event at its own version: an event whose
	// stream already holds its version is skipped, so that importing the
	// same events again writes nothing. Each stream's version moves to its
	// last imported event. The events get new positions, in the order
	// given across batches; their RecordedAt is kept. A batch is written
	// whole or not at all, and only once every batch before it is: the
	// first failure ends the import, and the result counts the batches
	// written before it. A driver may write a batch while the one before
	// it commits.
	EventImport(ctx context.Context, p *EventImportParams) (*EventImportResult, error)
}

// EventImportParams are the inputs of Importer.EventImport.
type EventImportParams struct {
	// Batches yields the batches, in position order; Position is ignored.
	// An error it yields ends the import with that error, once the
	// batches before it are written.
	Batches iter.Seq2[[]*meowmxtype.RecordedEvent, error]
	// Progress, when set, is called after each batch is written, in
	// order, with the totals so far.
	Progress func(EventImportResult)
}

// EventImportResult is the outcome of Importer.EventImport.
type EventImportResult struct {
	// Written counts the events written, Skipped those already stored.
	Written, Skipped int64
}

// ImportPlan is what a batch of EventImport writes, from PlanImport.
type ImportPlan struct {
	// Events are the events to write, in the order given: those past
	// their stream's stored version.
	Events []*meowmxtype.RecordedEvent
	// Streams are the streams whose version moves, each with its new
	// version and type, in the order of their first event.
	Streams []meowmxtype.StreamInfo
	// New tells, for each of Streams, whether it is not stored yet.
	New []bool
}

// PlanImport checks a batch of EventImport against its streams as stored
// (by aggregate id; absent when not stored) and returns what to write. An
// error wraps ErrImportRefused and names the stream.
func PlanImport(evs []*meowmxtype.RecordedEvent, stored map[string]meowmxtype.StreamInfo) (*ImportPlan, error) {
	p := &ImportPlan{Events: make([]*meowmxtype.RecordedEvent, 0, len(evs))}
	// One lookup an event: the index of its stream in p.Streams, whose
	// stored version and last version in the batch are beside it.
	heads := make(map[string]int, min(len(evs), len(stored)+64))
	var storedAt, last []int64
	for _, ev := range evs {
		id := ev.StreamID.ID
		i, ok := heads[id]
		if !ok {
			s, found := stored[id]
			if !found {
				s = meowmxtype.StreamInfo{StreamID: ev.StreamID, Version: -1}
			}
			if s.StreamID.Type != ev.StreamID.Type {
				return nil, fmt.Errorf("%w: stream %q is of aggregate type %q, not %q", ErrImportRefused, id, s.StreamID.Type, ev.StreamID.Type)
			}
			if ev.Version > s.Version+1 {
				return nil, fmt.Errorf("%w: stream %q is at version %d: its next event cannot be version %d", ErrImportRefused, id, s.Version, ev.Version)
			}
			i = len(p.Streams)
			heads[id] = i
			p.Streams = append(p.Streams, s)
			p.New = append(p.New, !found)
			storedAt, last = append(storedAt, s.Version), append(last, ev.Version)
		} else {
			if ev.StreamID.Type != p.Streams[i].StreamID.Type {
				return nil, fmt.Errorf("%w: stream %q has events of aggregate types %q and %q", ErrImportRefused, id, p.Streams[i].StreamID.Type, ev.StreamID.Type)
			}
			if ev.Version != last[i]+1 {
				return nil, fmt.Errorf("%w: stream %q has version %d after %d", ErrImportRefused, id, ev.Version, last[i])
			}
			last[i] = ev.Version
		}
		if s := &p.Streams[i]; ev.Version > s.Version {
			s.Version = ev.Version
			p.Events = append(p.Events, ev)
		}
	}
	// Streams with nothing to write keep their version: drop them.
	out, outNew := p.Streams[:0], p.New[:0]
	for i, s := range p.Streams {
		if storedAt[i] != s.Version || p.New[i] {
			out, outNew = append(out, s), append(outNew, p.New[i])
		}
	}
	p.Streams, p.New = out, outNew
	return p, nil
}
