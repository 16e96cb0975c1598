package meowmxpgx

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// browser implements meowmxdriver.Browser on the pool. Its queries use
// idx_es_aggregates_type_id (migration 009): categories and ids compare
// in byte order (COLLATE "C"), whatever the database's collation.
type browser struct{ d *Driver }

// How StreamList selects ids by prefix.
const (
	prefixNone = iota
	prefixRange
	prefixFilter
)

// browseQueries are the Browser's statements of one schema.
type browseQueries struct {
	categoryList string
	// streamList[prefixNone, prefixRange or prefixFilter][after]
	streamList [3][2]string
	// readBackward[before][byType: no, some, one][byEvent]
	readBackward [2][3][2]string
	mcv          string
}

func buildBrowseQueries(r interface{ Replace(string) string }, kind idKind) browseQueries {
	var b browseQueries
	// A loose index scan: each step finds the next category by the
	// index, so that listing categories costs one probe each, not a scan
	// of every stream. The counts read at most $3 index entries each.
	b.categoryList = r.Replace(`WITH RECURSIVE c(t, n) AS (
			SELECT min(aggregate_type COLLATE "C"), 1 FROM {s}.es_aggregates WHERE aggregate_type COLLATE "C" > $1
			UNION ALL
			SELECT (SELECT min(aggregate_type COLLATE "C") FROM {s}.es_aggregates WHERE aggregate_type COLLATE "C" > c.t), c.n + 1
			FROM c WHERE c.t IS NOT NULL AND c.n < $2)
		SELECT c.t, x.streams, x.events FROM c, LATERAL (
			SELECT count(*) AS streams, coalesce(sum(s.version + 1), 0) AS events FROM (
				SELECT a.version FROM {s}.es_aggregates a
				WHERE a.aggregate_type COLLATE "C" = c.t LIMIT $3) s) x
		WHERE c.t IS NOT NULL
		ORDER BY c.t COLLATE "C"`)
	idCmp := `a.id COLLATE "C"`
	if kind == idUUID {
		idCmp = "a.id"
	}
	for byPrefix := range 3 {
		for after := range 2 {
			where := ""
			if after == 1 {
				where += " AND " + idCmp + " > $2{id}"
			}
			switch byPrefix {
			case prefixRange: // one range of the index
				where += ` AND a.id COLLATE "C" >= $3{id} AND a.id COLLATE "C" < $4{id}`
			case prefixFilter: // UUIDs; or a prefix with no end (all U+10FFFF)
				where += " AND starts_with(a.id::text, $3)"
			}
			// The parameters that a variant does not use are typed in a
			// constant test: PostgreSQL refuses a parameter it cannot type.
			b.streamList[byPrefix][after] = r.Replace(`SELECT a.id::text, a.aggregate_type, a.version
				FROM {s}.es_aggregates a
				WHERE a.aggregate_type COLLATE "C" = $1
				  AND ($2::text, $3::text, $4::text) IS NOT NULL` + where + `
				ORDER BY a.aggregate_type COLLATE "C", ` + idCmp + ` LIMIT $5`)
		}
	}
	for before := range 2 {
		for byType := range 3 {
			for byEvent := range 2 {
				where, next := "", 4
				if before == 1 {
					where += " AND (e.transaction_id, e.id) < ($1::xid8, $2::bigint)"
				}
				// The event's category column (migration 011), as in
				// readAllSQL: one category walks its index backward.
				typ := "COALESCE(e.aggregate_type, (SELECT a.aggregate_type FROM {s}.es_aggregates a WHERE a.id = e.aggregate_id), '')"
				switch byType {
				case 1:
					where += fmt.Sprintf(" AND e.aggregate_type = ANY($%d::text[])", next)
					typ = "e.aggregate_type"
					next++
				case 2:
					where += fmt.Sprintf(" AND e.aggregate_type = $%d::text", next)
					typ = "e.aggregate_type"
					next++
				}
				if byEvent == 1 {
					where += fmt.Sprintf(" AND e.event_type = ANY($%d::text[])", next)
				}
				// Without a position, $1 and $2 are still typed (PostgreSQL
				// refuses a parameter it cannot type), in a constant test.
				b.readBackward[before][byType][byEvent] = r.Replace(`SELECT ` + strings.Replace(eventColumns, "a.aggregate_type", typ, 1) + `
					FROM {s}.es_events e
					WHERE e.transaction_id < ` + horizonSQL + `
					  AND ($1::xid8, $2::bigint) IS NOT NULL` + where + `
					ORDER BY e.transaction_id DESC, e.id DESC LIMIT $3`)
			}
		}
	}
	b.mcv = `SELECT m.v, m.f * greatest(c.reltuples, 0)
		FROM pg_stats s, unnest(s.most_common_vals::text::text[], s.most_common_freqs) AS m(v, f),
			pg_class c
		WHERE s.schemaname = $1 AND s.tablename = 'es_aggregates' AND s.attname = 'aggregate_type'
		  AND c.oid = to_regclass($2)`
	return b
}

func (b browser) exec() *executor { return &executor{d: b.d, db: b.d.pool, pool: true} }

// CategoryList implements meowmxdriver.Browser.
func (b browser) CategoryList(ctx context.Context, p *meowmxdriver.CategoryListParams) ([]*meowmxtype.CategoryInfo, error) {
	e := b.exec()
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := e.db.Query(ctx, q.browse.categoryList, p.After, p.Limit, p.CountCap+1)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*meowmxtype.CategoryInfo, error) {
		var c meowmxtype.CategoryInfo
		return &c, row.Scan(&c.Type, &c.Streams, &c.Events)
	})
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	var stats map[string]float64
	for _, c := range out {
		if c.Streams <= int64(p.CountCap) {
			continue
		}
		// The count stopped at the cap: estimate from the planner's
		// statistics, when the category is among the most common values,
		// else keep the counted part, a lower bound.
		c.Estimated = true
		if stats == nil {
			stats = map[string]float64{}
			rows, err := e.db.Query(ctx, q.browse.mcv, b.d.schema, b.d.quoted+".es_aggregates")
			if err != nil {
				return nil, interpretError(err, onRead)
			}
			var v string
			var n float64
			if _, err := pgx.ForEachRow(rows, []any{&v, &n}, func() error { stats[v] = n; return nil }); err != nil {
				return nil, interpretError(err, onRead)
			}
		}
		if n := int64(stats[c.Type]); n > c.Streams {
			c.Events = int64(float64(c.Events) / float64(c.Streams) * float64(n))
			c.Streams = n
		}
	}
	return out, nil
}

// StreamList implements meowmxdriver.Browser.
func (b browser) StreamList(ctx context.Context, p *meowmxdriver.StreamListParams) ([]*meowmxtype.StreamInfo, error) {
	e := b.exec()
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	byPrefix, after := prefixNone, 0
	args := []any{p.Type, p.After, p.Prefix, "", p.Limit}
	if p.After != "" {
		if err := q.checkID(p.After); err != nil {
			return nil, err
		}
		after = 1
	}
	if p.Prefix != "" {
		end, ok := meowmxdriver.PrefixEnd(p.Prefix)
		byPrefix, args[3] = prefixRange, end
		if !ok || q.idKind == idUUID {
			byPrefix = prefixFilter
		}
	}
	rows, err := e.db.Query(ctx, q.browse.streamList[byPrefix][after], args...)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*meowmxtype.StreamInfo, error) {
		var s meowmxtype.StreamInfo
		return &s, row.Scan(&s.StreamID.ID, &s.StreamID.Type, &s.Version)
	})
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	return out, nil
}

// EventReadBackward implements meowmxdriver.Browser.
func (b browser) EventReadBackward(ctx context.Context, p *meowmxdriver.EventReadBackwardParams) ([]*meowmxtype.RecordedEvent, error) {
	e := b.exec()
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	before := 0
	if p.Before != (meowmxtype.Position{}) {
		before = 1
	}
	args, byType, byEvent := filterArgs([]any{p.Before.TransactionID, p.Before.EventID, p.Limit}, p.AggregateTypes, p.EventTypes)
	return e.readEvents(ctx, min(p.Limit, 64), q.browse.readBackward[before][byType][byEvent], args...)
}
