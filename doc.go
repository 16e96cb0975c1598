// Package meowmx is an event store for Go on PostgreSQL, with an embedded
// SQLite backend for demos and tests.
//
// # Streams and versions
//
// Events are JSON payloads with an event type, appended to a stream. A
// stream is named by a StreamID: an aggregate type (its category, such as
// "order") and an aggregate id, unique across types. Each event has a
// 0-based version in its stream; a stream without events is at version -1.
//
// # Appending with optimistic concurrency
//
// Store.Append writes events if the stream is at the version the writer
// expects (AnyVersion, NoStream, StreamExists or Exact(n)). When another
// writer got there first, nothing is written and the error matches
// ErrConcurrency: reload, decide again, retry. Store.AppendTx does the same
// inside the caller's transaction, next to the caller's own writes.
//
// # Reading
//
// Store.ReadStream and Store.IterStream read one stream by version, forward
// or backward. Store.ReadAll and Store.IterAll read across streams, or
// across some categories, in global order: by Position, the writing
// transaction's id then the event id. On PostgreSQL they stop below the
// oldest transaction still running, so a reader paging forward never skips
// an event that commits late.
//
// # Typed events and aggregates
//
// A Registry maps event type names to Go types: RegisterEvent, then
// Registry.Encode and Registry.Decode turn structs into EventData and
// RecordedEvents back into structs. Upcasters registered on it turn old
// event shapes and names into current ones as events are read. An event
// whose type is unknown gets an error matching ErrUnknownEventType, which
// readers may skip.
//
// A Repository loads and saves aggregates: a state type T whose *T has an
// Apply(event) method. Load replays an aggregate's events, all of them,
// page by page; Aggregate.Emit applies new events and keeps them pending;
// Save appends them at the version the aggregate was loaded at; Update
// loads, runs a decision, saves, and on a version conflict loads and
// decides again, a bounded number of times:
//
//	orders, err := meowmx.NewRepository[Order](store, "order", registry, nil)
//	_, err = orders.Update(ctx, "order-1", func(o *meowmx.Aggregate[Order]) error {
//		if o.State.Status != "placed" {
//			return errNotPlaced
//		}
//		return o.Emit(OrderConfirmed{})
//	})
//
// With RepositoryConfig.SnapshotEvery, the state is also saved every N
// events in es_aggregate_snapshots, and loads start from the latest
// snapshot. A snapshot of another struct shape or SnapshotVersion is never
// used: the aggregate is replayed instead.
//
// # Drivers
//
// A Store runs on a driver: meowmxpgx for a pgx v5 pool, meowmxsqlite for
// an embedded SQLite database (meowmxsqlite.Open, with
// meowmxsqlite.Memory for tests). Choose the backend by what you open; the
// methods are the same.
package meowmx
