// Package meowmxsqlite runs meowmx on SQLite through modernc.org/sqlite
// (pure Go, no cgo): the embedded backend for demos, local development and
// tests. The store's methods are the same as on PostgreSQL; only the
// opening differs.
//
//	driver, err := meowmxsqlite.Open(ctx, "events.db", nil) // or meowmxsqlite.Memory in tests
//	defer driver.Close()
//	store, err := meowmx.NewStore(driver, nil)
//	_, err = store.Migrate(ctx, nil)
//
// # Connections and locking
//
// SQLite lets one writer at a time hold the database's write lock. Open
// puts a file database in WAL mode (synchronous=NORMAL), so that readers
// never wait for the writer, and opens two pools:
//
//   - one connection for writes and transactions (Driver.DB). The
//     writers of a process queue for it in Go, in order, without polling;
//   - Config.MaxReadConns read-only connections for reads outside
//     transactions, which run in parallel with each other and with the
//     writer.
//
// Every write transaction takes the write lock at its start (BEGIN
// IMMEDIATE, and Driver.Begin makes sure of it whatever the DSN): a
// transaction that read first and wrote later would fail with SQLITE_BUSY
// if another connection had written in between, and busy timeouts cannot
// help it. Writers in other processes on the same file wait for each
// other on the busy timeout (Config.BusyTimeout, 30 s by default), which
// only a writer holding the lock for that long exhausts.
//
// BenchmarkStrategy (bench_test.go) compares this with one pool of
// several connections and with one connection for everything; the
// figures are in docs/BENCHMARKS.md. In a pool of several connections,
// writers wait on SQLite's busy handler, which sleeps and polls, so the
// lock stays idle between a commit and the next poll; writers that queue
// in Go get it as soon as it is released. A single connection writes as
// fast, but then every read waits for the writes, and a read outside a
// transaction waits for any open transaction of the process.
//
// Against the same work written as plain SQL on the same database
// (BenchmarkAppend, BenchmarkCatchUp), appends and catch-up reads cost
// somewhat more; in a read, the difference goes mostly to reading every
// column into events (docs/BENCHMARKS.md).
//
// Because a process has one write connection, a goroutine that holds a
// transaction begun on Driver.DB (or with Driver.Begin) and then calls a
// method without Tx that writes, such as Store.Append, waits for itself
// until its context ends. Use the Tx methods inside a transaction.
//
// # Global order
//
// es_events.transaction_id is 0 on SQLite, and Position.TransactionID with
// it: the event id alone orders events. SQLite assigns ids inside the
// write transaction, which holds the write lock until it commits, so a
// transaction's events get ids above those of every transaction that
// committed before it, and below those of every transaction that commits
// after it. A reader that has seen an id has therefore seen every smaller
// id that will ever commit: no commit horizon is needed (Capabilities
// Horizon is false), and events are readable across streams as soon as they
// commit. AUTOINCREMENT keeps ids from being reused.
//
// # Differences from PostgreSQL
//
//   - No horizon: ReadAll and IterAll see a commit at once, and a long
//     transaction delays no reader; it delays every writer instead.
//   - One writer at a time, per database file: write throughput does not
//     grow with more writers. An append inside the caller's transaction
//     runs in a savepoint: when it fails, the caller's transaction goes on
//     without it (PostgreSQL aborts the transaction).
//   - No LISTEN/NOTIFY (Capabilities Listen is false): subscribers in other
//     processes learn of new events by polling.
//   - Aggregate ids are TEXT; the UUID and CHAR(n) id types of
//     PostgreSQL are refused by Migrate.
//   - Times are stored as text, RFC 3339 with microseconds, taken from
//     the clock of the process that appends.
//
// Memory, the path for tests, opens a private temporary file in WAL mode
// rather than an in-memory database, whose locking differs: see Memory.
package meowmxsqlite
