package meowmxsqlite

import (
	"context"
	"math"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// browser implements meowmxdriver.Browser on the read pool. Its queries use
// idx_es_aggregates_type_id (migration 006); text compares in byte order
// (the BINARY collation).
type browser struct{ d *Driver }

const (
	// categoryListSQL: ?1 after, ?2 limit, ?3 count cap. A loose index
	// scan: each step finds the next category by the index, and the
	// counts read at most ?3 index entries each. SQLite has no statistics
	// of values: a count that reaches the cap is a lower bound.
	categoryListSQL = `WITH RECURSIVE c(t, n) AS (
			SELECT (SELECT min(aggregate_type) FROM es_aggregates WHERE aggregate_type > ?1), 1
			UNION ALL
			SELECT (SELECT min(aggregate_type) FROM es_aggregates WHERE aggregate_type > c.t), c.n + 1
			FROM c WHERE c.t IS NOT NULL AND c.n < ?2)
		SELECT c.t,
			(SELECT count(*) FROM (SELECT 1 FROM es_aggregates a WHERE a.aggregate_type = c.t LIMIT ?3)),
			(SELECT coalesce(sum(s.version + 1), 0) FROM (
				SELECT a.version FROM es_aggregates a WHERE a.aggregate_type = c.t LIMIT ?3) s)
		FROM c WHERE c.t IS NOT NULL ORDER BY c.t`
	// streamListSQL: ?1 type, ?2 after, ?3 prefix (lower bound), ?4 end
	// of the prefix's range, ?5 limit.
	streamListSQL = `SELECT id, aggregate_type, version FROM es_aggregates INDEXED BY idx_es_aggregates_type_id
		WHERE aggregate_type = ?1 AND id > ?2 AND id >= ?3 AND id < ?4
		ORDER BY id LIMIT ?5`
	// allStreamsSQL is streamListSQL without a prefix (?3 and ?4 unused).
	allStreamsSQL = `SELECT id, aggregate_type, version FROM es_aggregates INDEXED BY idx_es_aggregates_type_id
		WHERE aggregate_type = ?1 AND id > ?2 AND (?3 IS NOT NULL OR ?4 IS NULL)
		ORDER BY id LIMIT ?5`
	// prefixFilterSQL is streamListSQL for a prefix without an end (all
	// U+10FFFF): ?4 is the prefix again.
	prefixFilterSQL = `SELECT id, aggregate_type, version FROM es_aggregates INDEXED BY idx_es_aggregates_type_id
		WHERE aggregate_type = ?1 AND id > ?2 AND id >= ?3 AND substr(id, 1, length(?4)) = ?4
		ORDER BY id LIMIT ?5`
)

// readBackwardSQL[byType][byEvent]: ?1 before event id, ?2 limit, ?3
// aggregate types, ?4 event types (JSON arrays).
var readBackwardSQL = [2][2]string{
	{readBackward(false, false), readBackward(false, true)},
	{readBackward(true, false), readBackward(true, true)},
}

func readBackward(byType, byEvent bool) string {
	where := ""
	if byType {
		where += ` AND a.aggregate_type IN (SELECT value FROM json_each(?3))`
	}
	if byEvent {
		where += ` AND e.event_type IN (SELECT value FROM json_each(?4))`
	}
	return `SELECT ` + eventColumns + `
		FROM es_events e CROSS JOIN es_aggregates a ON a.id = e.aggregate_id
		WHERE e.id < ?1` + where + `
		ORDER BY e.id DESC LIMIT ?2`
}

func (b browser) exec() *executor { return &executor{d: b.d, db: b.d.read} }

// CategoryList implements meowmxdriver.Browser.
func (b browser) CategoryList(ctx context.Context, p *meowmxdriver.CategoryListParams) ([]*meowmxtype.CategoryInfo, error) {
	rows, err := b.exec().query(ctx, categoryListSQL, p.After, p.Limit, p.CountCap+1)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var out []*meowmxtype.CategoryInfo
	for rows.Next() {
		var c meowmxtype.CategoryInfo
		if err := rows.Scan(&c.Type, &c.Streams, &c.Events); err != nil {
			return nil, interpretError(err)
		}
		c.Estimated = c.Streams > int64(p.CountCap)
		out = append(out, &c)
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err)
	}
	return out, nil
}

// StreamList implements meowmxdriver.Browser.
func (b browser) StreamList(ctx context.Context, p *meowmxdriver.StreamListParams) ([]*meowmxtype.StreamInfo, error) {
	query, end := allStreamsSQL, any(nil)
	if p.Prefix != "" {
		query = streamListSQL
		if e, ok := meowmxdriver.PrefixEnd(p.Prefix); ok {
			end = e
		} else {
			query, end = prefixFilterSQL, p.Prefix
		}
	}
	rows, err := b.exec().query(ctx, query, p.Type, p.After, p.Prefix, end, p.Limit)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var out []*meowmxtype.StreamInfo
	for rows.Next() {
		var s meowmxtype.StreamInfo
		if err := rows.Scan(&s.StreamID.ID, &s.StreamID.Type, &s.Version); err != nil {
			return nil, interpretError(err)
		}
		out = append(out, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err)
	}
	return out, nil
}

// EventReadBackward implements meowmxdriver.Browser. Every event is at
// transaction id 0: all are before a position with another one.
func (b browser) EventReadBackward(ctx context.Context, p *meowmxdriver.EventReadBackwardParams) ([]*meowmxtype.RecordedEvent, error) {
	before := p.Before.EventID
	if p.Before == (meowmxtype.Position{}) || p.Before.TransactionID > 0 {
		before = math.MaxInt64
	}
	args := []any{before, p.Limit}
	byType, byEvent := 0, 0
	if len(p.AggregateTypes) > 0 || len(p.EventTypes) > 0 {
		args = append(args, stringsJSON(p.AggregateTypes))
		if len(p.AggregateTypes) > 0 {
			byType = 1
		}
	}
	if len(p.EventTypes) > 0 {
		byEvent = 1
		args = append(args, stringsJSON(p.EventTypes))
	}
	return b.exec().readEvents(ctx, readBackwardSQL[byType][byEvent], args...)
}
