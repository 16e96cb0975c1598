package meowmxpgx

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// queries holds the SQL of one schema, specialised for the type of its
// aggregate id column.
type queries struct {
	// append[kind][withUUIDs][many]
	append       [4][2][2]string
	appendRound  [8][2][2]string // [guards][withUUIDs][many], see appendRoundSQL
	streamGet    string
	streamGets   string // streamGet of many ids
	streamLock   string
	uuidStored   string
	streamRead   [2]string    // [backward]
	readAll      [3][2]string // [byAggregateType: no, some, one][byEventType]
	readPart     sync.Map     // partitionRead's statements, by partitionKey
	replace      func(string) string
	listByUUID   string
	snapshotGet  string
	snapshotSave string
	idKind       idKind
	browse       browseQueries
	cast         string // the cast of a text to the id column's type
}

// idKind is the kind of the aggregate id column's type.
type idKind int

const (
	idText idKind = iota // text, varchar: any id is stored as given
	idUUID               // uuid: PostgreSQL prints ids in canonical form
	idChar               // character(n): PostgreSQL drops trailing spaces
)

// checkID refuses ids that the column would store as another id, so that
// an id always reads back as written and two ids are never one stream: a
// UUID not in canonical form (upper case, braces, no hyphens), or an id
// with trailing spaces in a CHAR(n) column (which pads and strips them, and
// silently cuts spaces beyond n). PostgreSQL itself refuses what is not a
// UUID and what is too long for CHAR(n).
func (q *queries) checkID(id string) error {
	switch q.idKind {
	case idUUID:
		if u, err := uuid.Parse(id); err == nil && u.String() != id {
			return fmt.Errorf("%w: aggregate id %q is not a UUID in canonical form (%s)", meowmxdriver.ErrInvalidInput, id, u)
		}
	case idChar:
		if strings.HasSuffix(id, " ") {
			return fmt.Errorf("%w: aggregate id %q ends in a space, which a CHAR(n) column drops", meowmxdriver.ErrInvalidInput, id)
		}
	}
	return nil
}

// Append kinds, indexes into queries.append.
const (
	appendAny = iota
	appendNoStream
	appendExact
	appendExists
)

var charType = regexp.MustCompile(`^(?i:character|char|bpchar)\s*(\((\d+)\))?$`)

// idCast returns the cast that turns a text parameter into the id column's
// type. CHAR(n) casts to bpchar without a length: an explicit cast to
// char(n) would truncate silently, while assignment to the column refuses a
// value that is too long.
func idCast(formatType string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(formatType))
	switch {
	case t == "text" || strings.HasPrefix(t, "character varying") || strings.HasPrefix(t, "varchar"):
		return "::text", nil
	case t == "uuid":
		return "::text::uuid", nil
	case charType.MatchString(t):
		return "::text::bpchar", nil
	}
	return "", fmt.Errorf("meowmxpgx: unsupported aggregate id column type %q (want text, uuid or character(n))", formatType)
}

const eventColumns = `e.id, e.transaction_id, e.aggregate_id::text, a.aggregate_type, e.version,
	e.event_type, e.json_data, e.metadata, e.event_uuid, e.created_at`

// partitionHashSQL is the partition hash of aggregate id expression id
// (meowmxtype.PartitionOf before the modulo), which writers store with
// each event (migration 013).
func partitionHashSQL(id string) string {
	return "('x' || left(md5(" + id + "::text), 8))::bit(32)::bigint"
}

// partitionSQL is meowmxtype.PartitionOf in SQL: the partition, of n, of
// the es_events row e (its partition_hash, migration 010).
func partitionSQL(e, n string) string {
	return "(" + e + ".partition_hash % " + n + ")"
}

// partitionKey names a statement of partitionRead.
type partitionKey struct{ byType, byEvent, partitions int }

// partitionRead returns readAll's statement for a partition of a group of
// n partitions. n is written into the statement, so that it can walk the
// group's index (Driver.PartitionIndex) when it exists.
func (q *queries) partitionRead(byType, byEvent, n int) string {
	k := partitionKey{byType, byEvent, n}
	if sql, ok := q.readPart.Load(k); ok {
		return sql.(string)
	}
	sql, _ := q.readPart.LoadOrStore(k, q.replace(readAllSQL(byType, byEvent == 1, n)))
	return sql.(string)
}

// readAllSQL is the keyset read of events across streams below the commit
// horizon, from $1, $2 (the position after which to read), at most $3
// events, in position order; filtered by aggregate types (byType 1: any
// of $4, 2: $4) and event types (the next parameter), and, with
// partitions above 1, to partition $next of that many.
func readAllSQL(byType int, byEvent bool, partitions int) string {
	where, next := "", 4
	switch byType {
	case 1:
		where += fmt.Sprintf(" AND e.aggregate_type = ANY($%d::text[])", next)
		next++
	case 2:
		// One category walks its own events in the (aggregate_type,
		// transaction_id, id) index (migration 011), and needs no
		// es_aggregates.
		where += fmt.Sprintf(" AND e.aggregate_type = $%d::text", next)
		next++
	}
	if byEvent {
		where += fmt.Sprintf(" AND e.event_type = ANY($%d::text[])", next)
		next++
	}
	order := "e.transaction_id, e.id"
	if partitions > 1 {
		// The partition's expression leads the order, as in the
		// group's index: without that index, the equality makes it a
		// constant, and the (transaction_id, id) index still serves.
		part := partitionSQL("e", strconv.Itoa(partitions))
		where += " AND " + part + fmt.Sprintf(" = $%d", next)
		order = part + ", " + order
	}
	// The event carries its category (migration 011): a read needs no
	// es_aggregates, whose lookup was 3 of every 4 buffers a page read.
	// An event whose stream row was written after it (plain SQL, no
	// trigger value) has none and is looked up.
	typ := "COALESCE(e.aggregate_type, (SELECT a.aggregate_type FROM {s}.es_aggregates a WHERE a.id = e.aggregate_id), '')"
	if byType > 0 { // a category read selects on the column
		typ = "e.aggregate_type"
	}
	from := `SELECT ` + strings.Replace(eventColumns, "a.aggregate_type", typ, 1) + `
		FROM {s}.es_events e`
	return from + `
		WHERE (e.transaction_id, e.id) > ($1::xid8, $2::bigint)
		  AND e.transaction_id < ` + horizonSQL + where + `
		ORDER BY ` + order + ` LIMIT $3`
}

func buildQueries(schema, idType string) (*queries, error) {
	cast, err := idCast(idType)
	if err != nil {
		return nil, err
	}
	r := strings.NewReplacer("{s}", schema, "{id}", cast, "{ids}", strings.ReplaceAll(cast+"[]", "::text::", "::text[]::"))
	q := &queries{cast: cast}
	switch cast {
	case "::text::uuid":
		q.idKind = idUUID
	case "::text::bpchar":
		q.idKind = idChar
	}

	for kind := range 4 {
		for withUUIDs := range 2 {
			for many := range 2 {
				q.append[kind][withUUIDs][many] = r.Replace(appendSQL(kind, withUUIDs == 1, many == 1))
			}
		}
	}
	for guards := 1; guards < 8; guards++ {
		for withUUIDs := range 2 {
			for many := range 2 {
				q.appendRound[guards][withUUIDs][many] = r.Replace(appendRoundSQL(guards, withUUIDs == 1, many == 1))
			}
		}
	}
	q.streamGet = r.Replace(`SELECT id::text, aggregate_type, version FROM {s}.es_aggregates WHERE id = $1{id}`)
	q.streamGets = r.Replace(`SELECT id::text, aggregate_type, version FROM {s}.es_aggregates WHERE id = ANY($1{ids})`)
	q.uuidStored = r.Replace(`SELECT EXISTS (SELECT FROM {s}.es_events WHERE event_uuid = ANY($1::uuid[]))`)
	// Waiting for a row lock takes no transaction id: the id comes with
	// the lock, after the stream's last writer has ended.
	q.streamLock = r.Replace(`SELECT FROM {s}.es_aggregates WHERE id = $1{id} FOR UPDATE`)
	for backward, order := range []string{"ASC", "DESC"} {
		// Every event of the stream has the same aggregate type: it is
		// looked up once (an InitPlan), not joined row by row.
		q.streamRead[backward] = r.Replace(`SELECT ` + strings.Replace(eventColumns, "a.aggregate_type",
			"(SELECT a.aggregate_type FROM {s}.es_aggregates a WHERE a.id = $1{id})", 1) + `
			FROM {s}.es_events e
			WHERE e.aggregate_id = $1{id} AND e.version >= $2::bigint AND e.version <= $3::bigint
			ORDER BY e.version ` + order + ` LIMIT $4`)
	}
	for byType := range 3 {
		for byEvent := range 2 {
			q.readAll[byType][byEvent] = r.Replace(readAllSQL(byType, byEvent == 1, 0))
		}
	}
	q.replace = r.Replace
	q.listByUUID = r.Replace(`SELECT ` + eventColumns + `
		FROM {s}.es_events e JOIN {s}.es_aggregates a ON a.id = e.aggregate_id
		WHERE e.event_uuid = ANY($1::uuid[])
		ORDER BY e.aggregate_id, e.version`)
	q.browse = buildBrowseQueries(r, q.idKind)
	q.snapshotGet = r.Replace(`SELECT aggregate_id::text, version, json_data,
			COALESCE(aggregate_type, ''), COALESCE(snapshot_version, -1), COALESCE(state_shape, '')
		FROM {s}.es_aggregate_snapshot
		WHERE aggregate_id = $1{id} AND version <= $2::bigint
		ORDER BY version DESC LIMIT 1`)
	q.snapshotSave = r.Replace(`INSERT INTO {s}.es_aggregate_snapshot AS s
			(aggregate_id, version, json_data, aggregate_type, snapshot_version, state_shape)
		VALUES ($1{id}, $2::bigint, $3::text::json, $4, $5::bigint, $6)
		ON CONFLICT (aggregate_id, version) DO UPDATE SET json_data = EXCLUDED.json_data,
			aggregate_type = EXCLUDED.aggregate_type, snapshot_version = EXCLUDED.snapshot_version,
			state_shape = EXCLUDED.state_shape`)
	return q, nil
}

// appendSQL is the single statement of an append: move the stream's version
// in es_aggregates (the optimistic-concurrency guard), then insert the
// events at the versions below the new one. When the guard matches no row,
// the events' SELECT has no input and nothing is written.
//
// The events of one statement share their transaction and created_at, and
// have consecutive versions: it returns them as one row (transaction id,
// created_at, first version, ids in version order), or no row when nothing
// was written. One row decodes faster than a row per event; a single event
// (many false) needs no aggregate to give it.
//
// $1 aggregate id, $2 aggregate type, $3 event types, $4 data, $5 metadata,
// then $6 event UUIDs (withUUIDs) and the expected version (exact).
func appendSQL(kind int, withUUIDs, many bool) string {
	next := 6
	uuidCheck, uuids := "", "NULL::uuid"
	unnest := "unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS v(t, d, m, n)"
	if withUUIDs {
		uuidCheck = " AND NOT EXISTS (SELECT FROM {s}.es_events x WHERE x.event_uuid = ANY($6::uuid[]))"
		uuids = "v.u"
		unnest = "unnest($3::text[], $4::text[], $5::text[], $6::uuid[]) WITH ORDINALITY AS v(t, d, m, u, n)"
		next = 7
	}
	var guard string
	switch kind {
	case appendAny, appendNoStream:
		cond := ""
		if kind == appendNoStream {
			cond = " AND a.version = -1" // a Python client's empty stream
		}
		guard = `INSERT INTO {s}.es_aggregates AS a (id, version, aggregate_type, last_transaction_id)
			SELECT $1{id}, cardinality($3::text[]) - 1, $2, pg_current_xact_id() WHERE true` + uuidCheck + `
			ON CONFLICT (id) DO UPDATE SET version = a.version + cardinality($3::text[]),
				last_transaction_id = pg_current_xact_id()
			WHERE a.aggregate_type = $2` + cond + inOrder + `
			RETURNING a.version, ` + partitionHashSQL("a.id") + ` AS h`
	case appendExact, appendExists:
		cond := " AND a.version >= 0"
		if kind == appendExact {
			cond = fmt.Sprintf(" AND a.version = $%d::bigint", next)
		}
		guard = `UPDATE {s}.es_aggregates AS a SET version = a.version + cardinality($3::text[]),
				last_transaction_id = pg_current_xact_id()
			WHERE a.id = $1{id} AND a.aggregate_type = $2` + cond + inOrder + uuidCheck + `
			RETURNING a.version, ` + partitionHashSQL("a.id") + ` AS h`
	}
	insert := `INSERT INTO {s}.es_events AS e (transaction_id, aggregate_id, version, event_type, json_data, metadata, event_uuid, aggregate_type, partition_hash)
		SELECT pg_current_xact_id(), $1{id}, agg.version - cardinality($3::text[]) + v.n, v.t, v.d::json, v.m::json, ` + uuids + `, $2, agg.h
		FROM agg, ` + unnest
	if !many { // one event: one row already, no aggregate needed
		return `WITH agg AS (` + guard + `) ` + insert + `
		RETURNING e.transaction_id, e.created_at, e.version, ARRAY[e.id]`
	}
	return `WITH agg AS (` + guard + `), ins AS (` + insert + `
		RETURNING e.id, e.transaction_id, e.version, e.created_at)
		SELECT transaction_id, created_at, min(version), array_agg(id ORDER BY version)
		FROM ins GROUP BY transaction_id, created_at`
}

// Guards of a round statement: which kinds of expected version its appends
// have. A statement holds the guards of its appends only.
const (
	guardAny      = 1 << iota // meowmxtype.AnyVersion
	guardNoStream             // meowmxtype.NoStream
	guardVersion              // exact versions, meowmxtype.StreamExists
)

// streamLockSeed seeds the hash of a stream's advisory lock key, apart
// from the keys of other advisory locks (migrations hash with seed 0).
const streamLockSeed = "7235960"

// inOrder keeps each stream's events in the global order: the row lock on
// es_aggregates (a) orders the writers of a stream, but a transaction may
// have taken its id before a later one that wrote the stream first (it
// wrote something else before, or lost the race between taking an id and
// locking the row). Its events would then sort before the stream's earlier
// ones. The check runs on the locked, latest row, and a refused append is
// run again in a new transaction (package meowmx).
const inOrder = " AND (a.last_transaction_id IS NULL OR a.last_transaction_id <= pg_current_xact_id())"

// appendRoundSQL is the statement of a round of appends to distinct
// streams: appendSQL over arrays, one row of input per append and, when
// some append has several events (many), one per event. Each append moves
// its stream's version if its guard holds and none of its event UUIDs is
// stored, then inserts its events; a refused append writes nothing and
// leaves the others alone. It returns the written events, each with its
// aggregate id, which names its append.
//
// One event per append: $1 aggregate ids, $2 aggregate types, $3 expected
// versions, $4 event types, $5 data, $6 metadata, then $7 UUIDs
// (withUUIDs). Many: $1 to $3 as before, $4 event counts; the events, in
// append order: $5 the append's 1-based index, $6 1-based position in the
// append, $7 types, $8 data, $9 metadata, then $10 UUIDs.
func appendRoundSQL(guards int, withUUIDs, many bool) string {
	anyV, exists := fmt.Sprintf("'%d'::bigint", meowmxtype.AnyVersion), fmt.Sprintf("'%d'::bigint", meowmxtype.StreamExists)
	var b strings.Builder
	src, n, uuid := "i", "1", "NULL::uuid"
	if !many {
		cols, names := "$4::text[], $5::text[], $6::text[]", "t, d, m"
		if withUUIDs {
			cols, names = cols+", $7::uuid[]", names+", u"
		}
		fmt.Fprintf(&b, `WITH i AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], %s) WITH ORDINALITY AS i(id, typ, expected, %s, idx)
	)`, cols, names)
		if withUUIDs {
			src, uuid = "ok", "ok.u"
			b.WriteString(`, ok AS (
		SELECT * FROM i WHERE NOT EXISTS (SELECT FROM {s}.es_events x WHERE x.event_uuid = i.u)
	)`)
		}
	} else {
		n = "i.n"
		b.WriteString(`WITH i AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[]) WITH ORDINALITY AS i(id, typ, expected, n, idx)
	), v AS (`)
		if withUUIDs {
			src, n, uuid = "ok", "ok.n", "v.u"
			b.WriteString(`SELECT * FROM unnest($5::int[], $6::int[], $7::text[], $8::text[], $9::text[], $10::uuid[]) AS v(idx, pos, t, d, m, u)
	), ok AS (
		SELECT i.* FROM i WHERE NOT EXISTS (
			SELECT FROM v JOIN {s}.es_events x ON x.event_uuid = v.u WHERE v.idx = i.idx)`)
		} else {
			b.WriteString(`SELECT * FROM unnest($5::int[], $6::int[], $7::text[], $8::text[], $9::text[]) AS v(idx, pos, t, d, m)`)
		}
		b.WriteString(`)`)
	}
	// Two batches with the same streams must not each hold one that the
	// other waits for. A guard that inserts (any, no stream) takes its
	// appends in the batch's order, bytewise by id, as every batch does;
	// but an UPDATE follows its plan's order, and two guards lock their
	// streams one after the other. A round with either first takes a
	// transaction-scoped advisory lock per stream, in the order of the
	// keys: batches that share streams then queue on the first they share.
	// (Row locks taken up front cost more: each writes its heap tuple and
	// WAL; docs/BENCHMARKS.md, group commit, "No deadlocks between
	// batches".)
	locked := ""
	if guards&guardVersion != 0 || guards == guardAny|guardNoStream {
		locked = ", locked"
		b.WriteString(`, locked AS (
		SELECT count(*) FROM (SELECT pg_advisory_xact_lock(k) FROM (
			SELECT DISTINCT hashtextextended(x, ` + streamLockSeed + `) AS k FROM unnest($1::text[]) x ORDER BY 1) s) l
	)`)
	}
	var moved []string
	create := func(name, kind, cond string) {
		moved = append(moved, "SELECT * FROM "+name)
		fmt.Fprintf(&b, `, %[1]s AS (
		INSERT INTO {s}.es_aggregates AS a (id, version, aggregate_type, last_transaction_id)
		SELECT %[2]s.id{id}, %[3]s - 1, %[2]s.typ, pg_current_xact_id() FROM %[2]s%[7]s WHERE %[2]s.expected = %[4]s
		ON CONFLICT (id) DO UPDATE SET version = a.version + excluded.version + 1,
			last_transaction_id = excluded.last_transaction_id
		WHERE a.aggregate_type = excluded.aggregate_type%[5]s%[6]s
		RETURNING a.id, a.version, %[8]s AS h
	)`, name, src, n, kind, cond, inOrder, locked, partitionHashSQL("a.id"))
	}
	if guards&guardAny != 0 {
		create("g_any", anyV, "")
	}
	if guards&guardNoStream != 0 {
		create("g_new", "-1", " AND a.version = -1")
	}
	if guards&guardVersion != 0 {
		moved = append(moved, "SELECT * FROM g_version")
		fmt.Fprintf(&b, `, g_version AS (
		UPDATE {s}.es_aggregates AS a SET version = a.version + %[2]s,
			last_transaction_id = pg_current_xact_id()
		FROM %[1]s%[6]s
		WHERE a.id = %[1]s.id{id} AND %[1]s.expected NOT IN (%[3]s, -1) AND a.aggregate_type = %[1]s.typ
		  AND (a.version = %[1]s.expected OR (%[1]s.expected = %[4]s AND a.version >= 0))%[5]s
		RETURNING a.id, a.version, %[7]s AS h
	)`, src, n, anyV, exists, inOrder, locked, partitionHashSQL("a.id"))
	}
	// The events' ids come from a sequence in the order of the rows
	// inserted: the ORDER BY numbers an append's events in version order.
	columns, from, order := "g.version, %[1]s.t, %[1]s.d::json, %[1]s.m::json", "", "%[1]s.idx"
	if many {
		columns, from, order = "g.version - %[1]s.n + v.pos, v.t, v.d::json, v.m::json", " JOIN v ON v.idx = %[1]s.idx", "%[1]s.idx, v.pos"
	}
	fmt.Fprintf(&b, `
	INSERT INTO {s}.es_events AS e (transaction_id, aggregate_id, version, event_type, json_data, metadata, event_uuid, aggregate_type, partition_hash)
	SELECT pg_current_xact_id(), g.id, `+columns+`, %[2]s, %[1]s.typ, g.h
	FROM (%[3]s) g JOIN %[1]s ON %[1]s.id{id} = g.id`+from+`
	ORDER BY `+order+`
	RETURNING e.aggregate_id::text, e.transaction_id, e.created_at, e.version, e.id`, src, uuid, strings.Join(moved, " UNION ALL "))
	return b.String()
}
