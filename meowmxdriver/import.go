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
	// Progress, when set, is called once for each batch written, in
	// order, before EventImport returns, with the totals so far: the
	// first batch not reported is the one an error is about.
	Progress func(EventImportResult)
}

// EventImportResult is the outcome of Importer.EventImport.
type EventImportResult struct {
	// Written counts the events written, Skipped those already stored.
	Written, Skipped int64
}

// ImportPlan is what a batch of EventImport writes. NewImportPlan groups
// the batch's events by stream; the driver gives it the streams that are
// stored (SetStored), then Check decides what to write.
type ImportPlan struct {
	// IDs are the batch's aggregate ids, each once, in the order of
	// their first event.
	IDs []string
	// Events are the events to write, in the order given: those past
	// their stream's stored version. Set by Check.
	Events []*meowmxtype.RecordedEvent
	// Moves are the streams whose version moves, as indexes in IDs, in
	// that order. Set by Check.
	Moves []int

	evs     []*meowmxtype.RecordedEvent
	index   map[string]int          // aggregate id → index in IDs
	of      []int32                 // each event's index in IDs
	streams []meowmxtype.StreamInfo // by index in IDs: as stored, then as the batch leaves it
	stored  []bool                  // by index in IDs: SetStored was called
}

// NewImportPlan groups a batch of EventImport by stream. Its streams are
// taken as not stored until SetStored says otherwise.
func NewImportPlan(evs []*meowmxtype.RecordedEvent) *ImportPlan {
	// One map lookup an event: the rest is indexed by the stream's place
	// in IDs (maps were most of the client's time of an import).
	p := &ImportPlan{evs: evs, index: make(map[string]int, min(len(evs), 1<<14)), of: make([]int32, len(evs))}
	for k, ev := range evs {
		i, ok := p.index[ev.StreamID.ID]
		if !ok {
			i = len(p.IDs)
			p.index[ev.StreamID.ID] = i
			p.IDs = append(p.IDs, ev.StreamID.ID)
			p.streams = append(p.streams, meowmxtype.StreamInfo{StreamID: ev.StreamID, Version: -1})
		}
		p.of[k] = int32(i)
	}
	p.stored = make([]bool, len(p.IDs))
	return p
}

// Find returns the index in IDs of a stream of the batch; false when the
// batch has none of its events.
func (p *ImportPlan) Find(id string) (int, bool) {
	i, ok := p.index[id]
	return i, ok
}

// SetStored records that stream i (an index in IDs) is stored as s.
func (p *ImportPlan) SetStored(i int, s meowmxtype.StreamInfo) {
	p.streams[i], p.stored[i] = s, true
}

// Stream returns stream i (an index in IDs): as stored before Check, as
// the batch leaves it after.
func (p *ImportPlan) Stream(i int) meowmxtype.StreamInfo { return p.streams[i] }

// Check checks the batch against its streams as stored and sets Events
// and Moves. It is called once, after SetStored. An error wraps
// ErrImportRefused and names the stream.
func (p *ImportPlan) Check() error {
	storedAt := make([]int64, len(p.streams))
	for i, s := range p.streams {
		storedAt[i] = s.Version
	}
	last := make([]int64, len(p.streams)) // each stream's last version in the batch so far
	seen := make([]bool, len(p.streams))
	p.Events = make([]*meowmxtype.RecordedEvent, 0, len(p.evs))
	for k, ev := range p.evs {
		i := p.of[k]
		s := &p.streams[i]
		switch {
		case !seen[i]:
			if ev.StreamID.Type != s.StreamID.Type {
				return fmt.Errorf("%w: stream %q is of aggregate type %q, not %q", ErrImportRefused, s.StreamID.ID, s.StreamID.Type, ev.StreamID.Type)
			}
			if ev.Version > s.Version+1 {
				return fmt.Errorf("%w: stream %q is at version %d: its next event cannot be version %d", ErrImportRefused, s.StreamID.ID, s.Version, ev.Version)
			}
			seen[i] = true
		case ev.StreamID.Type != s.StreamID.Type:
			return fmt.Errorf("%w: stream %q has events of aggregate types %q and %q", ErrImportRefused, s.StreamID.ID, s.StreamID.Type, ev.StreamID.Type)
		case ev.Version != last[i]+1:
			return fmt.Errorf("%w: stream %q has version %d after %d", ErrImportRefused, s.StreamID.ID, ev.Version, last[i])
		}
		last[i] = ev.Version
		if ev.Version > s.Version {
			s.Version = ev.Version
			p.Events = append(p.Events, ev)
		}
	}
	// Streams with nothing to write keep their version: left out.
	p.Moves = p.Moves[:0]
	for i, s := range p.streams {
		if s.Version != storedAt[i] || !p.stored[i] {
			p.Moves = append(p.Moves, i)
		}
	}
	return nil
}
