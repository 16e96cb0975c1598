package meowmxsqlite

import (
	"strings"

	"github.com/meowmx/meowmx/meowmxtype"
)

// The SQL of the event executor. Appends run several statements in one
// write transaction; holding SQLite's write lock from the start, nothing
// can change between them.

// Append guards: they move the stream's version in es_aggregates and return
// the new version, or no row when the stream is not at the expected version
// or belongs to another aggregate type. ?1 aggregate id, ?2 aggregate type,
// ?3 number of events, ?4 expected version.
const (
	// Any and NoStream create the stream row or move it. NoStream accepts
	// an existing row at -1: a stream created without events (the Python
	// client does that).
	guardAnySQL = `INSERT INTO es_aggregates (id, version, aggregate_type) VALUES (?1, ?3 - 1, ?2)
		ON CONFLICT (id) DO UPDATE SET version = version + ?3 WHERE aggregate_type = ?2
		RETURNING version`
	guardNoStreamSQL = `INSERT INTO es_aggregates (id, version, aggregate_type) VALUES (?1, ?3 - 1, ?2)
		ON CONFLICT (id) DO UPDATE SET version = version + ?3 WHERE aggregate_type = ?2 AND version = -1
		RETURNING version`
	guardExactSQL = `UPDATE es_aggregates SET version = version + ?3
		WHERE id = ?1 AND aggregate_type = ?2 AND version = ?4
		RETURNING version`
	guardExistsSQL = `UPDATE es_aggregates SET version = version + ?3
		WHERE id = ?1 AND aggregate_type = ?2 AND version >= 0
		RETURNING version`

	// uuidTakenSQL finds whether any of the UUIDs (?1, a JSON array of hex
	// strings) is stored.
	uuidTakenSQL = `SELECT 1 FROM es_events WHERE event_uuid IN (SELECT unhex(value) FROM json_each(?1)) LIMIT 1`

	streamGetSQL = `SELECT id, aggregate_type, version FROM es_aggregates WHERE id = ?1`
)

// guardSQL returns the guard of an expected version.
func guardSQL(expected meowmxtype.ExpectedVersion) string {
	switch expected {
	case meowmxtype.AnyVersion:
		return guardAnySQL
	case meowmxtype.NoStream:
		return guardNoStreamSQL
	case meowmxtype.StreamExists:
		return guardExistsSQL
	}
	return guardExactSQL
}

// preparedInserts is the most events whose INSERT the driver keeps
// prepared; larger appends are rare and parsed each time.
const preparedInserts = 8

// insertColumns are the columns an append writes, one placeholder each.
const insertColumns = 7

// insertEventsSQL inserts n events. transaction_id is 0: see the package
// doc, "Global order".
func insertEventsSQL(n int) string {
	if n < len(insertSQL) {
		return insertSQL[n]
	}
	return buildInsertSQL(n)
}

// insertSQL holds the INSERTs of up to preparedInserts events, built once.
var insertSQL = func() (out [preparedInserts + 1]string) {
	for n := range out {
		out[n] = buildInsertSQL(n)
	}
	return out
}()

func buildInsertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO es_events (aggregate_id, version, event_type, json_data, metadata, event_uuid, created_at) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?)")
	}
	b.WriteString(` RETURNING id, version`)
	return b.String()
}

// insertBatch is the most events one INSERT writes: SQLite takes at most
// 32766 parameters per statement.
const insertBatch = 1000

const eventColumns = `e.id, e.transaction_id, e.aggregate_id, a.aggregate_type, e.version,
	e.event_type, e.json_data, e.metadata, e.event_uuid, COALESCE(e.created_at, '')`

const eventsFrom = ` FROM es_events e JOIN es_aggregates a ON a.id = e.aggregate_id `

var (
	// streamReadSQL[backward]: ?1 aggregate id, ?2 from, ?3 to, ?4 limit.
	streamReadSQL = [2]string{streamRead("ASC"), streamRead("DESC")}
	// readAllSQL[byAggregateType][byEventType][partitioned]: ?1 after
	// event id, ?2 limit, ?3 aggregate types, ?4 event types (JSON
	// arrays), ?5 partitions, ?6 partition.
	readAllSQL = [2][2][2]string{
		{{readAll(false, false, false), readAll(false, false, true)}, {readAll(false, true, false), readAll(false, true, true)}},
		{{readAll(true, false, false), readAll(true, false, true)}, {readAll(true, true, false), readAll(true, true, true)}},
	}
	// listByUUIDSQL: ?1 UUIDs as a JSON array of hex strings.
	listByUUIDSQL = `SELECT ` + eventColumns + eventsFrom + `
		WHERE e.event_uuid IN (SELECT unhex(value) FROM json_each(?1))
		ORDER BY e.aggregate_id, e.version`
)

func streamRead(order string) string {
	return `SELECT ` + eventColumns + eventsFrom + `
		WHERE e.aggregate_id = ?1 AND e.version >= ?2 AND e.version <= ?3
		ORDER BY e.version ` + order + ` LIMIT ?4`
}

// readAll needs no horizon: a reader's snapshot holds every transaction
// committed before it began, and the event ids of those transactions are
// below the ids of any transaction that commits later. transaction_id is 0
// in every row, so the event id alone is the position: the rowid range
// keeps a page's cost bounded, and CROSS JOIN keeps SQLite from reading a
// whole category and sorting it instead.
func readAll(byType, byEvent, partitioned bool) string {
	where := ""
	if byType {
		where += ` AND a.aggregate_type IN (SELECT value FROM json_each(?3))`
	}
	if byEvent {
		where += ` AND e.event_type IN (SELECT value FROM json_each(?4))`
	}
	if partitioned {
		where += ` AND ` + partitionFunc + `(e.aggregate_id, ?5) = ?6`
	}
	return `SELECT ` + eventColumns + `
		FROM es_events e CROSS JOIN es_aggregates a ON a.id = e.aggregate_id
		WHERE e.id > ?1` + where + `
		ORDER BY e.id LIMIT ?2`
}
