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
// Aggregate ids, aggregate types, event types and subscription names are
// non-empty UTF-8 without NUL, at most MaxNameLength (1024) bytes. The
// limit is checked before anything reaches the database, the same on every
// driver, so that code tested on SQLite meets it where PostgreSQL would;
// a longer name gets a *NameTooLongError (ErrNameTooLong, and
// ErrInvalidArgument) that shows only its first bytes.
//
// # Appending with optimistic concurrency
//
// Store.Append writes events if the stream is at the version the writer
// expects (AnyVersion, NoStream, StreamExists or Exact(n)). When another
// writer got there first, nothing is written and the error matches
// ErrConcurrency: reload, decide again, retry. Store.AppendTx does the same
// inside the caller's transaction, next to the caller's own writes.
//
// # Group commit
//
// Appends made through Store.Append from concurrent goroutines share
// transactions: on PostgreSQL a transaction (its commit, its round trip)
// costs more than the events in it. An append on an idle store is sent at
// once, alone, as it would be without group commit; appends that arrive
// while a batch is being committed wait for it to end and then go
// together, up to GroupCommitConfig.MaxBatch, in one transaction. A second
// batch goes beside the first only once the first has been in flight for
// 5ms (it waits for a stream's lock, or for a slow commit), so that one
// slow batch does not hold up every append of the store. Each
// keeps its own meaning: its events are atomic, its expected version is
// checked exactly (two appends to one stream in a batch are checked in
// the order they were made), and a conflict, a duplicate event or bad
// input fails only that append. When an append makes the shared
// transaction fail, the others are sent again without it and it runs
// alone, so it gets the error it would have got by itself. Store.AppendTx
// is never grouped. Config.GroupCommit turns it off or tunes it.
//
// When the connection breaks while an append is in flight, the append
// fails with an error matching ErrCommitUnknown, with or without group
// commit: its transaction may or may not have committed. Give events UUIDs
// and retry with the same UUIDs: the retry returns the stored result when
// the first attempt committed, and appends otherwise. A caller whose
// context ends while its append waits in the queue gets ctx.Err() and
// nothing is written; once the append was sent, ErrCommitUnknown too (the
// batch goes on for the others, and is cancelled when every caller in it
// has given up).
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
// events in es_aggregate_snapshot (PostgreSQL; es_aggregate_snapshots on
// SQLite: the Python client's names), and loads start from the latest
// snapshot. A snapshot of another struct shape or SnapshotVersion is never
// used: the aggregate is replayed instead.
//
// # Subscriptions
//
// Store.RunSubscription runs a named, durable subscription: it hands the
// events its filter selects (some aggregate types, some event types, or
// all) to a Handler (or a BatchHandler), in global order, and advances the
// subscription's checkpoint (es_event_subscriptions) in the transaction it
// gives the handler. What the handler writes in that transaction commits
// with the checkpoint or not at all: a read model updated there is updated
// exactly once. Effects outside it are at-least-once. RunSubscription
// blocks until its context is cancelled. On PostgreSQL these transactions
// commit without waiting for the disk flush (unless
// SubscriptionConfig.SynchronousCommit): a crash loses the last of them
// whole, handler's writes with the checkpoint, and the events come again.
//
// Events are read SubscriptionConfig.BatchSize at a time (the next page is
// read while one is handled, when handling takes about as long as
// reading) and handled CheckpointEvery per transaction. The handler's
// transaction begins with its first statement: one that never uses it
// costs no BEGIN, and its checkpoint advances in one statement.
// A new subscription starts from the beginning, or from the end, or after
// a position (StartFrom); a restart continues after the last handled event.
//
// One worker owns a subscription at a time, across processes and machines;
// others stand by. Ownership is a lease in the subscription's row: the
// owner renews it every LockInterval and with every checkpoint, a worker
// that leaves releases it (a standby takes over within LockInterval), and
// an owner that stops renewing — dead, hung, frozen, cut off — loses it
// LeaseTimeout after its last renewal. The checkpoint update is fenced on
// the position the worker read and on its holding the lease (UPDATE …
// WHERE last_transaction_id = old AND last_event_id = old AND owner_id =
// me): a worker that lost its lease without knowing it yet cannot commit
// events another worker handled, because its transaction rolls back,
// handler's writes included. Store.Subscriptions shows each subscription's
// owner (host, pid, worker id), lease, time since progress and state.
//
// A failing event is retried MaxAttempts times with doubling back-off;
// then the subscription stops with a *HandlerError (FailureStop, the
// default) or parks the event (FailurePark). Later events of a stream with
// a parked event are parked behind it, so that no stream is seen out of
// order, unless PassParked. Store.ParkedEvents lists them with their
// errors; Store.ReplayParked hands them to the running owner again, in
// order. A handler's panic is recovered and treated as its error.
//
// Store.Subscriptions lists subscriptions with their position, lag, parked
// count and what holds them back; ResetSubscription rewinds or skips;
// DeleteSubscription removes one; WaitForSubscription waits until one has
// caught up (for tests and deployments).
//
// # Consumer groups
//
// One owner caps a subscription at what one handler does: a handler that
// calls another service at 1 ms an event handles 1 000 events a second.
// SubscriptionConfig.Partitions splits a subscription into partitions by
// a hash of the aggregate id (PartitionOf), so that each stream belongs to
// one partition. Each partition is a subscription row of its own, named
// PartitionName(group, p), with its own checkpoint, lease and parked
// events: everything above holds per partition, so each stream is handled
// in order, by one worker at a time, exactly once for the transactional
// handler, also across a hand-over.
//
// Every RunSubscription of the group is a member. The database is the
// coordinator: each member records itself every LockInterval (in
// es_subscription_workers, lapsing after LeaseTimeout) and reads the
// others; the members, by id, take the partitions round robin, so W
// members hold ⌊N/W⌋ or ⌈N/W⌉ of N each. A member runs its partitions
// concurrently (one goroutine and, while it handles, one connection each:
// size the pool for it), takes a partition as soon as the member that had
// it lets it go, and lets go of those that belong to another member now,
// after committing the work in hand. A member that joins has its share
// within a few LockIntervals; one that stops hands its partitions over at
// once; one that dies loses them LeaseTimeout later. Two members that
// disagree for a moment (one has not seen a newcomer yet) never both own a
// partition: the leases decide.
//
// The partitions are fixed when the group is created: RunSubscription
// refuses another number with ErrPartitionsChanged, rather than moving
// streams between checkpoints. ParkedEvents, ReplayParked,
// ResetSubscription, WaitForSubscription and DeleteSubscription take the
// group's name for all its partitions, and the first four a partition's
// name for that one; Store.Subscriptions lists a group with its members
// and, in PartitionInfos, each partition's position, lag, owner and state.
// On SQLite the leases and member records are rows of the database file,
// so a group works across the processes that share the file as within one.
//
// # The commit horizon and what holds it back (PostgreSQL)
//
// Subscriptions read only events of transactions below
// pg_snapshot_xmin(pg_current_snapshot()): the oldest transaction still
// running in the whole cluster that has a transaction id. Every
// transaction below it has ended, so a subscriber never skips an event
// that commits late. The price: one long transaction that has written
// anything (in any database of the cluster) delays every subscriber until
// it ends. A read-only transaction, however long, does not.
//
// A handler's transaction takes a transaction id at its first write, and
// then holds the horizon back until it commits: for other subscriptions,
// too. Keep handlers quick after their first write, or handle fewer events
// per transaction (CheckpointEvery). A slow handler that has not written
// holds nothing back. When a transaction has held the horizon back for
// HorizonWarnAfter, idle workers log a warning naming its session (pid,
// state, transaction start, query, from pg_stat_activity), and
// Store.Subscriptions reports it in SubscriptionInfo.HorizonHeldBy for the
// subscriptions with events waiting behind it.
//
// One kind of transaction is left out of the horizon: those of the
// sessions named "meowmx row lock", which a worker's driver keeps while it
// owns a subscription, holding a FOR KEY SHARE lock on its row so that the
// Python meowmx client's batches (SELECT … FOR UPDATE SKIP LOCKED) skip it.
// They never write, so no event hides behind them; each lives about 100 ms
// (see meowmxpgx.Config.NoSubscriptionRowLock). Never give that
// application_name to a session that writes events.
//
// # Notifications and polling
//
// Store.Append wakes subscriptions of the same store at once, and those of
// other processes with a NOTIFY sent after its commit, outside its
// transaction, coalesced: one in flight at a time and at most one per
// Config.NotifyInterval. Store.AppendTx, whose commit belongs to the
// caller, notifies the same way at once, before that commit; nothing is
// added to the caller's transaction (a NOTIFY in it would take
// PostgreSQL's database-wide notify lock at its commit). Each store keeps
// one listening connection while subscriptions run, and reconnects with
// back-off when it drops. A notification can arrive before
// the horizon has passed the announced transaction: the worker then looks
// again after 1 ms, 2 ms, 4 ms … (then every 100 ms at the slowest) until
// the horizon has passed it, rather than at its next poll. Workers poll
// too (PollInterval, doubling up to MaxPollInterval), so nothing depends
// on notifications: behind a transaction-mode pooler, where LISTEN does not
// work, set meowmxpgx.Config.DisableNotify and subscriptions poll.
//
// # Restored databases
//
// A checkpoint stores a transaction id. In a database restored from a dump
// (pg_dump, not a physical copy) transaction ids start again from a low
// number, so stored checkpoints are ahead of every new transaction and no
// new event would ever come after them. RunSubscription detects this and
// returns a *CheckpointAheadError (Store.Subscriptions sets
// SubscriptionInfo.Ahead) rather than waiting forever. The stored events'
// transaction_id values are ahead as well, so new events sort before old
// ones: before writing to a restored database, either move its
// transaction counter past the highest stored transaction_id (stop the
// server and run pg_resetwal with --next-transaction-id and --epoch), or
// rewrite es_events.transaction_id to values below the new counter, in the
// same order. Then rebase each subscription with ResetSubscription to the
// position, in the restored database, of the last event it handled (its
// event id is the checkpoint's EventID: SELECT transaction_id, id FROM
// es_events WHERE id = <event id>).
//
// # Observability
//
// A store reports OpenTelemetry traces and metrics to Config.TracerProvider
// and Config.MeterProvider, otel's global providers by default: until the
// program sets them (otel.SetTracerProvider, otel.SetMeterProvider) they
// are no-ops, and the store starts no span and allocates nothing for them.
//
// Spans follow the semantic conventions for messaging and databases where
// they fit (messaging.system "meowmx", db.system.name "postgresql" or
// "sqlite"), with meowmx.* attributes beside them:
//
//	send <aggregate type>   producer: one per Append/AppendTx; stream, expected
//	                        version, event count, group-commit batch size,
//	                        meowmx.outcome ok, conflict or error
//	read_stream, read_all   client: one per page read (ReadStream, IterAll, a
//	                        subscription's pages); db.response.returned_rows
//	process <subscription>  consumer: one per handler call (an event, or a
//	                        batch); partition, first and last position,
//	                        attempt, outcome; linked to the appends' spans
//	park <subscription>     an event parked after its last attempt
//	replay <subscription>   a parked event handed to the handler again
//
// While an append's span is sampled, the append stores the span's W3C
// trace context in each event's metadata, under TraceParentKey
// ({"traceparent":"00-…-01", …}), and the spans of the handlers that
// process the event, in this process or any other, link to it: a trace
// follows an event from the request that appended it to every
// subscription that handled it. Metadata is never changed otherwise (an
// unsampled span, no provider, metadata that is not a JSON object or
// already mentions the key). The handler's context carries its span, so
// the handler's own spans are its children.
//
// Metrics: meowmx.append.duration (histogram by meowmx.outcome; its count
// is the appends by outcome), meowmx.events.appended,
// meowmx.group_commit.batch_size; per meowmx.subscription (a consumer
// group's name for its partitions) meowmx.subscription.handled,
// meowmx.subscription.handler.duration, meowmx.subscription.parked,
// meowmx.subscription.retries, and the gauges meowmx.subscription.lag
// (events) and meowmx.subscription.lag.age (seconds), reported by the
// process that owns the subscription (for a group, each member its own
// partitions: sum them); meowmx.horizon.age and meowmx.listener.connected
// (0 or 1). The gauges are read when the metrics are collected, one
// query each, and only while the store runs a subscription. `meowmx
// worker --metrics :9464` serves them to Prometheus.
//
// # Drivers
//
// A Store runs on a driver: meowmxpgx for a pgx v5 pool, meowmxsqlite for
// an embedded SQLite database (meowmxsqlite.Open, with
// meowmxsqlite.Memory for tests). Choose the backend by what you open; the
// methods are the same.
package meowmx
