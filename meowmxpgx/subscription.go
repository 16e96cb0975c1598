package meowmxpgx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// Subscription SQL. None of these statements takes a row lock or a
// transaction id of its own except the writes (create, advance, set, park),
// which are short. The checkpoint UPDATE is fenced on the old position, so
// that a worker that lost its lock (or overlaps with a new owner for a
// moment) cannot move it: its transaction, and the handler's writes in it,
// roll back.

// filterSQL selects events of e (es_events) joined to a (es_aggregates) by
// the arrays in parameters $n and $n+1 (NULL: no filter).
func filterSQL(n int) string {
	return fmt.Sprintf(` AND ($%d::text[] IS NULL OR a.aggregate_type = ANY($%d::text[]))
		AND ($%d::text[] IS NULL OR e.event_type = ANY($%d::text[]))`, n, n, n+1, n+1)
}

func (e *executor) r(sql string) string {
	return strings.ReplaceAll(sql, "{s}", e.d.quoted)
}

// nullableArray maps an empty filter to NULL.
func nullableArray(a []string) []string {
	if len(a) == 0 {
		return nil
	}
	return a
}

const subscriptionColumns = `subscription_name, last_transaction_id, last_event_id, aggregate_types, event_types,
	COALESCE(group_name, ''), COALESCE(partition_no, 0), COALESCE(partition_count, 0)`

func scanSubscription(row pgx.Row, extra ...any) (*meowmxtype.SubscriptionInfo, error) {
	var s meowmxtype.SubscriptionInfo
	dest := append([]any{&s.Name, &s.Position.TransactionID, &s.Position.EventID, &s.AggregateTypes, &s.EventTypes,
		&s.Group, &s.Partition, &s.Partitions}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, interpretError(err, onRead)
	}
	if s.Partitions < 2 {
		s.Partitions = 0
	}
	return &s, nil
}

// SubscriptionEnsure implements meowmxdriver.SubscriptionExecutor. A new
// row starts at p.At or, when p.AtHead, at the head: after the last
// readable event (events of transactions still open, or committed above
// the horizon, come after it). An existing row takes the filter and keeps
// its checkpoint: the UPDATE leaves the position columns alone. It updates
// the row even when the filter is unchanged, as ON CONFLICT DO UPDATE ...
// WHERE would return no row then.
func (e *executor) SubscriptionEnsure(ctx context.Context, p *meowmxdriver.SubscriptionEnsureParams) (*meowmxtype.SubscriptionInfo, error) {
	if _, err := e.queries(ctx); err != nil {
		return nil, err
	}
	// The group's row is written only when its partitions are those asked
	// for (the WHERE of DO UPDATE); otherwise the row as stored is
	// returned and nothing changes. A new group's partitions start where
	// it starts; an existing group's take the filter.
	partitions := p.Partitions
	if partitions < 2 {
		partitions = 0
	}
	return scanSubscription(e.db.QueryRow(ctx, e.r(`WITH ensured AS (
			INSERT INTO {s}.es_event_subscriptions AS s
				(subscription_name, last_transaction_id, last_event_id, aggregate_types, event_types, partition_count, filter_stored)
			SELECT $1, COALESCE(h.transaction_id, CASE WHEN $4::bool THEN '0'::xid8 ELSE $2::xid8 END),
				COALESCE(h.id, CASE WHEN $4::bool THEN 0 ELSE $3::bigint END), $5::text[], $6::text[], NULLIF($7::int, 0), true
			FROM (SELECT) one LEFT JOIN LATERAL (
				SELECT e.transaction_id, e.id FROM {s}.es_events e
				WHERE $4::bool AND e.transaction_id < `+horizonSQL+`
				ORDER BY e.transaction_id DESC, e.id DESC LIMIT 1) h ON true
			ON CONFLICT (subscription_name) DO UPDATE
				SET aggregate_types = EXCLUDED.aggregate_types, event_types = EXCLUDED.event_types, filter_stored = true
				WHERE COALESCE(s.partition_count, 0) = $7::int AND s.group_name IS NULL
			RETURNING `+subscriptionColumns+`
		), parts AS (
			INSERT INTO {s}.es_event_subscriptions AS s (subscription_name, last_transaction_id, last_event_id,
				aggregate_types, event_types, group_name, partition_no, partition_count, filter_stored)
			SELECT g.subscription_name || '#' || n, g.last_transaction_id, g.last_event_id, $5::text[], $6::text[],
				g.subscription_name, n, $7::int, true
			FROM ensured g, generate_series(0, $7::int - 1) n
			ON CONFLICT (subscription_name) DO UPDATE
				SET aggregate_types = EXCLUDED.aggregate_types, event_types = EXCLUDED.event_types, filter_stored = true
				WHERE s.group_name = EXCLUDED.group_name
		)
		SELECT * FROM ensured
		UNION ALL
		SELECT `+subscriptionColumns+` FROM {s}.es_event_subscriptions
		WHERE subscription_name = $1 AND NOT EXISTS (SELECT FROM ensured)`),
		p.Name, p.At.TransactionID, p.At.EventID, p.AtHead, nullableArray(p.AggregateTypes), nullableArray(p.EventTypes), partitions))
}

func (e *executor) SubscriptionGet(ctx context.Context, p *meowmxdriver.SubscriptionGetParams) (*meowmxtype.SubscriptionInfo, error) {
	return scanSubscription(e.db.QueryRow(ctx, e.r(`SELECT `+subscriptionColumns+`
		FROM {s}.es_event_subscriptions WHERE subscription_name = $1`), p.Name))
}

func (e *executor) SubscriptionList(ctx context.Context, p *meowmxdriver.SubscriptionListParams) ([]*meowmxtype.SubscriptionInfo, error) {
	if !e.pool {
		return e.subscriptionList(ctx, p)
	}
	// On the pool: in a read-only transaction with JIT off. The planner
	// prices the capped lag walks as if they read the whole backlog, and
	// JIT-compiled the statement for a second or more (1.2 s at 100k
	// events, against milliseconds without; BenchmarkPages/Subscriptions).
	var out []*meowmxtype.SubscriptionInfo
	err := pgx.BeginTxFunc(ctx, e.d.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		var err error
		out, err = (&executor{d: e.d, db: tx}).subscriptionList(ctx, p)
		return err
	})
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	return out, nil
}

func (e *executor) subscriptionList(ctx context.Context, p *meowmxdriver.SubscriptionListParams) ([]*meowmxtype.SubscriptionInfo, error) {
	// The lag counts the first LagCap+1 events after each checkpoint, in
	// the order of the (transaction_id, id) index: a bounded walk. Beyond
	// it, the estimate is the difference of event ids.
	// A group's own row counts nothing: its partitions do, each of the
	// events of its streams.
	// A row that the Python client created has no stored filter
	// (filter_stored is false): it runs one aggregate type, which is that
	// of the event at its checkpoint (it only ever advances to events of
	// its type). Without a checkpoint event, its lag is unknown.
	// Three walks, one of which runs for a subscription (the others'
	// tests of s are one-time filters): u for Go's subscriptions without
	// a filter or partitions, k for one category, c for the others.
	const (
		unfiltered = `s.filter_stored AND s.aggregate_types IS NULL AND s.event_types IS NULL AND s.group_name IS NULL
			AND COALESCE(s.partition_count, 0) < 2`
		oneCategory = `cardinality(f.types) = 1 AND s.event_types IS NULL AND s.group_name IS NULL
			AND COALESCE(s.partition_count, 0) < 2`
	)
	rows, err := e.db.Query(ctx, e.r(`SELECT s.subscription_name, s.last_transaction_id, s.last_event_id,
			f.types, s.event_types,
			COALESCE(s.group_name, ''), COALESCE(s.partition_no, 0), COALESCE(s.partition_count, 0),
			c.lag + u.lag + k.lag, c.waiting + u.waiting + k.waiting, LEAST(c.oldest, u.oldest, k.oldest),
			(SELECT count(*) FROM {s}.es_parked_events p WHERE p.subscription_name = s.subscription_name),
			GREATEST(COALESCE(pg_sequence_last_value(pg_get_serial_sequence($2, 'id')::regclass), 0) - s.last_event_id, 0),
			CASE WHEN s.lease_until > clock_timestamp() THEN s.owner_id END, COALESCE(s.owner_host, ''), COALESCE(s.owner_pid, 0),
			GREATEST(s.lease_until - clock_timestamp(), '0'::interval), clock_timestamp() - s.progress_at,
			ARRAY(SELECT w.host || '/' || w.pid || '/' || w.worker_id FROM {s}.es_subscription_workers w
				WHERE w.subscription_name = s.subscription_name AND w.seen_until > clock_timestamp()
				  AND w.worker_id IS DISTINCT FROM (CASE WHEN s.lease_until > clock_timestamp() THEN s.owner_id END)
				ORDER BY w.worker_id),
			NOT s.filter_stored, f.types IS NULL AND NOT s.filter_stored
		FROM {s}.es_event_subscriptions s, LATERAL (
			SELECT CASE WHEN s.filter_stored THEN s.aggregate_types ELSE (
				SELECT ARRAY[a.aggregate_type] FROM {s}.es_events e JOIN {s}.es_aggregates a ON a.id = e.aggregate_id
				WHERE e.id = s.last_event_id) END AS types) f, LATERAL (
			-- u reads the (transaction_id, id) index alone (an index-only
			-- scan where the visibility map allows), and one row for the
			-- first event's time: a walk that read each row cost one heap
			-- page an event at 1 KB events (16.8 ms at 10 million events,
			-- against 4 ms for 100-byte events).
			SELECT count(*) AS lag,
				count(*) FILTER (WHERE x.transaction_id >= `+horizonSQL+`) AS waiting,
				(SELECT e.created_at FROM {s}.es_events e
				 WHERE `+unfiltered+`
				   AND (e.transaction_id, e.id) > (s.last_transaction_id, s.last_event_id)
				 ORDER BY e.transaction_id, e.id LIMIT 1) AS oldest
			FROM (SELECT e.transaction_id
				FROM {s}.es_events e
				WHERE `+unfiltered+`
				  AND (e.transaction_id, e.id) > (s.last_transaction_id, s.last_event_id)
				ORDER BY e.transaction_id, e.id LIMIT $1) x) u, LATERAL (
			-- k walks the category's own index (migration 011), also
			-- index-only: a category far behind in a store of many
			-- categories walked every event of the others up to the head
			-- (10 to 35 s at 10 million events).
			SELECT count(*) AS lag,
				count(*) FILTER (WHERE x.transaction_id >= `+horizonSQL+`) AS waiting,
				(SELECT e.created_at FROM {s}.es_events e
				 WHERE `+oneCategory+` AND e.aggregate_type = f.types[1]
				   AND (e.transaction_id, e.id) > (s.last_transaction_id, s.last_event_id)
				 ORDER BY e.aggregate_type, e.transaction_id, e.id LIMIT 1) AS oldest
			FROM (SELECT e.transaction_id
				FROM {s}.es_events e
				WHERE `+oneCategory+` AND e.aggregate_type = f.types[1]
				  AND (e.transaction_id, e.id) > (s.last_transaction_id, s.last_event_id)
				ORDER BY e.aggregate_type, e.transaction_id, e.id LIMIT $1) x) k, LATERAL (
			-- c walks the position index for the others (several
			-- categories, event types, partitions), the category from the
			-- event's column, as the subscription's reads.
			SELECT count(*) AS lag,
				count(*) FILTER (WHERE x.transaction_id >= `+horizonSQL+`) AS waiting,
				min(x.created_at) AS oldest
			FROM (SELECT e.transaction_id, e.created_at
				FROM {s}.es_events e
				WHERE (e.transaction_id, e.id) > (s.last_transaction_id, s.last_event_id)
				  AND (s.filter_stored OR f.types IS NOT NULL)
				  AND (f.types IS NULL OR e.aggregate_type = ANY(f.types))
				  AND (s.event_types IS NULL OR e.event_type = ANY(s.event_types))
				  AND (s.group_name IS NULL OR `+partitionSQL("e", "s.partition_count")+` = s.partition_no)
				  AND (s.group_name IS NOT NULL OR COALESCE(s.partition_count, 0) < 2)
				  AND NOT (`+unfiltered+`) AND NOT COALESCE(`+oneCategory+`, false)
				ORDER BY e.transaction_id, e.id LIMIT $1) x) c
		ORDER BY s.subscription_name`), p.LagCap+1, e.d.quoted+".es_events")
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*meowmxtype.SubscriptionInfo, error) {
		var lag, waiting, parked, estimate int64
		var oldest *time.Time
		var owner meowmxtype.SubscriptionOwner
		var ownerID *string
		var leaseLeft, sinceProgress *time.Duration
		var standbys []string
		var inferred, unknown bool
		s, err := scanSubscription(row, &lag, &waiting, &oldest, &parked, &estimate,
			&ownerID, &owner.Host, &owner.PID, &leaseLeft, &sinceProgress, &standbys, &inferred, &unknown)
		if s != nil {
			s.FilterInferred, s.LagUnknown = inferred && !unknown, unknown
			s.Standbys = meowmxtype.ParseSubscriptionOwners(standbys)
			s.SinceProgress = -1
			if ownerID != nil {
				owner.ID = *ownerID
				s.Owner = &owner
			}
			if leaseLeft != nil {
				s.LeaseLeft = *leaseLeft
			}
			if sinceProgress != nil {
				s.SinceProgress = *sinceProgress
			}
			s.Lag, s.Waiting, s.Parked = lag, waiting, parked
			if oldest != nil {
				s.OldestUnhandled = *oldest
			}
			if lag > int64(p.LagCap) && !unknown {
				s.Lag, s.LagEstimated = max(estimate, lag), true
			}
			if s.Partitions > 0 && s.Group == "" {
				s.Lag, s.LagEstimated = 0, false // counted by its partitions
			}
		}
		return s, err
	})
	return out, interpretError(err, onRead)
}

// advanceSQL is the fenced checkpoint UPDATE. set_config(…, true) lasts
// until the end of the transaction, and synchronous_commit is read at its
// commit.
// With an owner ($7) it is fenced on the owner's lease as well, and
// renews it ($8) and records progress.
const advanceSQL = `UPDATE {s}.es_event_subscriptions
	SET last_transaction_id = $2, last_event_id = $3,
		lease_until = CASE WHEN $7 <> '' THEN clock_timestamp() + $8::interval ELSE lease_until END,
		progress_at = CASE WHEN $7 <> '' THEN clock_timestamp() ELSE progress_at END
	FROM (SELECT CASE WHEN $6 THEN set_config('synchronous_commit', 'off', true) END) AS async
	WHERE subscription_name = $1 AND last_transaction_id = $4::xid8 AND last_event_id = $5
	  AND ($7 = '' OR owner_id = $7)`

func advanceArgs(p *meowmxdriver.SubscriptionCommitParams) []any {
	return []any{p.Name, p.To.TransactionID, p.To.EventID, p.From.TransactionID, p.From.EventID, p.Async, p.Owner, p.TTL}
}

func (e *executor) SubscriptionLease(ctx context.Context, p *meowmxdriver.SubscriptionLeaseParams) (*meowmxdriver.SubscriptionLeaseResult, error) {
	r, err := e.subscriptionLease(ctx, p)
	rows := e.d.rowLocks
	if err != nil || rows == nil || !e.pool {
		return r, err
	}
	if !r.Held {
		rows.held(ctx, p.Name, p.Owner.ID, false)
		return r, nil
	}
	// The lease is taken; the row lock (see rowLocker) comes before the
	// worker handles anything. The lease UPDATE waited for a batch of the
	// Python client that held the row, if any (and Python's batches skip
	// the row while the UPDATE waits); when one began since, the lease
	// goes back and the worker stands by.
	if err := rows.lock(ctx, p.Name, p.TTL); err != nil {
		_, relErr := e.db.Exec(ctx, e.r(`UPDATE {s}.es_event_subscriptions SET owner_id = NULL, lease_until = NULL
			WHERE subscription_name = $1 AND owner_id = $2`), p.Name, p.Owner.ID)
		rows.held(ctx, p.Name, p.Owner.ID, false)
		switch {
		case relErr != nil:
			return nil, interpretError(relErr, onRead)
		case errors.Is(err, errRowLocked):
			return &meowmxdriver.SubscriptionLeaseResult{Holder: meowmxtype.SubscriptionOwner{ID: RowLockHolderID}, SinceProgress: -1}, nil
		}
		return nil, err
	}
	rows.held(ctx, p.Name, p.Owner.ID, true)
	return r, nil
}

// RowLockHolderID is the ID of the holder that SubscriptionLease reports
// when another client's session (the Python meowmx client, running a
// batch) holds the subscription's row locked.
const RowLockHolderID = "row-lock-of-another-client"

func (e *executor) subscriptionLease(ctx context.Context, p *meowmxdriver.SubscriptionLeaseParams) (*meowmxdriver.SubscriptionLeaseResult, error) {
	// The UPDATE holds the row's lock for the statement only; a lease
	// that is free, passed or p.Owner's is taken. Otherwise the holder is
	// read from the same snapshot.
	row := e.db.QueryRow(ctx, e.r(`WITH seen AS (
			INSERT INTO {s}.es_subscription_workers AS w (subscription_name, worker_id, host, pid, seen_until)
			SELECT $1, $2, $3, $4, clock_timestamp() + $5::interval
			WHERE EXISTS (SELECT FROM {s}.es_event_subscriptions WHERE subscription_name = $1)
			ON CONFLICT (subscription_name, worker_id) DO UPDATE SET seen_until = excluded.seen_until
		), taken AS (
			UPDATE {s}.es_event_subscriptions
			SET owner_id = $2, owner_host = $3, owner_pid = $4, lease_until = clock_timestamp() + $5::interval,
				progress_at = CASE WHEN $6 THEN clock_timestamp() ELSE progress_at END
			WHERE subscription_name = $1
			  AND (owner_id IS NULL OR owner_id = $2 OR lease_until IS NULL OR lease_until < clock_timestamp())
			RETURNING owner_id, owner_host, owner_pid, last_transaction_id, last_event_id, progress_at)
		SELECT true, owner_id, owner_host, owner_pid, last_transaction_id, last_event_id, clock_timestamp() - progress_at FROM taken
		UNION ALL
		SELECT false, COALESCE(owner_id, ''), COALESCE(owner_host, ''), COALESCE(owner_pid, 0), last_transaction_id, last_event_id,
			clock_timestamp() - progress_at
		FROM {s}.es_event_subscriptions WHERE subscription_name = $1 AND NOT EXISTS (SELECT FROM taken)`),
		p.Name, p.Owner.ID, p.Owner.Host, p.Owner.PID, p.TTL, p.Progress)
	var r meowmxdriver.SubscriptionLeaseResult
	var since *time.Duration
	if err := row.Scan(&r.Held, &r.Holder.ID, &r.Holder.Host, &r.Holder.PID, &r.Position.TransactionID, &r.Position.EventID, &since); err != nil {
		return nil, interpretError(err, onRead)
	}
	r.SinceProgress = -1
	if since != nil {
		r.SinceProgress = *since
	}
	return &r, nil
}

func (e *executor) SubscriptionJoin(ctx context.Context, p *meowmxdriver.SubscriptionJoinParams) ([]meowmxtype.SubscriptionOwner, error) {
	// The statement's snapshot does not see the row it inserts: the
	// joiner is added to what it reads.
	var ws []string
	err := e.db.QueryRow(ctx, e.r(`WITH seen AS (
			INSERT INTO {s}.es_subscription_workers AS w (subscription_name, worker_id, host, pid, seen_until)
			SELECT $1, $2, $3, $4, clock_timestamp() + $5::interval
			WHERE EXISTS (SELECT FROM {s}.es_event_subscriptions WHERE subscription_name = $1)
			ON CONFLICT (subscription_name, worker_id) DO UPDATE SET seen_until = excluded.seen_until
			RETURNING host || '/' || pid || '/' || worker_id AS w
		)
		SELECT ARRAY(SELECT w FROM seen UNION
			SELECT w.host || '/' || w.pid || '/' || w.worker_id FROM {s}.es_subscription_workers w
			WHERE w.subscription_name = $1 AND w.seen_until > clock_timestamp() AND w.worker_id <> $2)
		WHERE EXISTS (SELECT FROM seen)`),
		p.Name, p.Owner.ID, p.Owner.Host, p.Owner.PID, p.TTL).Scan(&ws)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	return meowmxtype.ParseSubscriptionOwners(ws), nil
}

func (e *executor) SubscriptionRelease(ctx context.Context, p *meowmxdriver.SubscriptionReleaseParams) error {
	_, err := e.db.Exec(ctx, e.r(`WITH gone AS (
			DELETE FROM {s}.es_subscription_workers WHERE subscription_name = $1 AND worker_id = $2)
		UPDATE {s}.es_event_subscriptions SET owner_id = NULL, lease_until = NULL
		WHERE subscription_name = $1 AND owner_id = $2`), p.Name, p.Owner)
	if rows := e.d.rowLocks; rows != nil && e.pool {
		rows.held(ctx, p.Name, p.Owner, false)
	}
	return interpretError(err, onRead)
}

// SubscriptionCommit implements meowmxdriver.ExecutorTx in one round trip. A
// transaction that never began (its handler did not use it) has nothing
// to commit: the checkpoint advances in a statement of its own. Otherwise
// the fenced UPDATE and COMMIT go together, as a pgx.Batch on the
// transaction's connection, bypassing pgx.Tx (which is not used again). A
// fenced UPDATE must then stop the COMMIT that follows it: it fails when
// it updates no row, dividing by the count of the rows it updated.
func (e *executorTx) SubscriptionCommit(ctx context.Context, p *meowmxdriver.SubscriptionCommitParams) (bool, error) {
	if e.tx.released {
		return false, interpretError(pgx.ErrTxClosed, onRead)
	}
	defer e.tx.release()
	conn := e.tx.conn
	if e.tx.tx == nil {
		tag, err := conn.Exec(ctx, e.r(advanceSQL), advanceArgs(p)...)
		if err != nil {
			return false, interpretError(err, onCommit)
		}
		return tag.RowsAffected() == 1, nil
	}
	if conn.PgConn().TxStatus() != 'T' {
		return false, errors.New("meowmxpgx: the transaction ended before the checkpoint advanced (a handler must not commit or roll back its transaction)")
	}
	b := &pgx.Batch{}
	b.Queue(e.r(`WITH advanced AS (`+advanceSQL+` RETURNING 1) SELECT 1 / count(*) FROM advanced`), advanceArgs(p)...)
	b.Queue("COMMIT")
	err := conn.SendBatch(ctx, b).Close()
	if err == nil {
		return true, nil
	}
	rollbackOpen(ctx, conn)
	if sqlState(err) == pgerrcode.DivisionByZero { // fenced
		return false, nil
	}
	return false, interpretError(err, onCommit)
}

func (e *executor) SubscriptionSet(ctx context.Context, p *meowmxdriver.SubscriptionSetParams) (bool, error) {
	var tx *uint64
	var id *int64
	if p.To != nil {
		tx, id = &p.To.TransactionID, &p.To.EventID
	}
	tag, err := e.db.Exec(ctx, e.r(`UPDATE {s}.es_event_subscriptions
		SET last_transaction_id = COALESCE($2::xid8, last_transaction_id),
		    last_event_id = COALESCE($3::bigint, last_event_id),
		    aggregate_types = CASE WHEN $4 THEN $5::text[] ELSE aggregate_types END,
		    event_types = CASE WHEN $4 THEN $6::text[] ELSE event_types END,
		    filter_stored = filter_stored OR $4
		WHERE subscription_name = $1`),
		p.Name, tx, id, p.SetFilter, nullableArray(p.AggregateTypes), nullableArray(p.EventTypes))
	if err != nil {
		return false, interpretError(err, onRead)
	}
	return tag.RowsAffected() == 1, nil
}

func (e *executor) SubscriptionDelete(ctx context.Context, p *meowmxdriver.SubscriptionDeleteParams) (bool, error) {
	tag, err := e.db.Exec(ctx, e.r(`DELETE FROM {s}.es_event_subscriptions WHERE subscription_name = $1`), p.Name)
	if err != nil {
		return false, interpretError(err, onRead)
	}
	return tag.RowsAffected() == 1, nil
}

func (e *executor) SubscriptionHead(ctx context.Context, p *meowmxdriver.SubscriptionHeadParams) (*meowmxtype.Position, error) {
	var pos meowmxtype.Position
	err := e.db.QueryRow(ctx, e.r(`SELECT e.transaction_id, e.id
		FROM {s}.es_events e JOIN {s}.es_aggregates a ON a.id = e.aggregate_id
		WHERE true`+filterSQL(1)+`
		  AND ($3::int < 2 OR `+partitionSQL("e", "$3::int")+` = $4::int)
		ORDER BY e.transaction_id DESC, e.id DESC LIMIT 1`),
		nullableArray(p.AggregateTypes), nullableArray(p.EventTypes), p.Partitions, p.Partition).Scan(&pos.TransactionID, &pos.EventID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	return &pos, nil
}

func (e *executor) HorizonGet(ctx context.Context) (*meowmxdriver.Horizon, error) {
	var h meowmxdriver.Horizon
	err := e.db.QueryRow(ctx, `SELECT `+horizonSQL+`, pg_snapshot_xmax(pg_current_snapshot())`).
		Scan(&h.Xmin, &h.Xmax)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	return &h, nil
}

// HorizonHolders lists sessions holding a transaction id (the only ones
// that hold pg_snapshot_xmin back: a read-only transaction does not) and
// prepared transactions, oldest first.
func (e *executor) HorizonHolders(ctx context.Context, p *meowmxdriver.HorizonHoldersParams) ([]*meowmxtype.HorizonHolder, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 5
	}
	rows, err := e.db.Query(ctx, `SELECT pid, state, datname, application_name, xid, since, age, query FROM (
			SELECT pid, COALESCE(state, '') AS state, COALESCE(datname, '') AS datname, COALESCE(application_name, '') AS application_name,
				backend_xid::text::bigint AS xid, xact_start AS since, now() - xact_start AS age,
				left(COALESCE(query, ''), 500) AS query, age(backend_xid) AS xid_age
			FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND xact_start IS NOT NULL
				AND application_name IS DISTINCT FROM '`+rowLockApplication+`' -- never writes: left out of the horizon
			UNION ALL
			SELECT 0, 'prepared', database, gid, transaction::text::bigint, prepared, now() - prepared, '', age(transaction)
			FROM pg_prepared_xacts) h
		WHERE age >= $1::interval
		ORDER BY xid_age DESC LIMIT $2`, p.OlderThan, limit)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*meowmxtype.HorizonHolder, error) {
		var h meowmxtype.HorizonHolder
		var xid int64
		err := row.Scan(&h.PID, &h.State, &h.Database, &h.Application, &xid, &h.TransactionStart, &h.Age, &h.Query)
		h.TransactionID = uint64(xid)
		return &h, err
	})
	return out, interpretError(err, onRead)
}

func (e *executor) ParkedInsert(ctx context.Context, p *meowmxdriver.ParkedInsertParams) error {
	n := len(p.Rows)
	names, xids, ids, aggs, errs, attempts := make([]string, n), make([]pgtype.Text, n), make([]int64, n), make([]string, n), make([]string, n), make([]int32, n)
	marks := make([]int64, n)
	for i, r := range p.Rows {
		names[i], ids[i], aggs[i], errs[i], attempts[i] = r.Subscription, r.Event.EventID, r.AggregateID, r.Error, int32(r.Attempts)
		xids[i] = pgtype.Text{String: fmt.Sprint(r.Event.TransactionID), Valid: true}
		marks[i] = r.Mark
	}
	// Rows with a mark that are stored already are updated first, their
	// replay mark kept when the row's xmin moved since it was listed (a
	// mark, which every ParkedMarkReplay leaves, even on a marked row). An
	// UPDATE that meets a concurrent mark waits for it and then sees the
	// new row, and its xmin. The others are upserted, their mark cleared.
	_, err := e.db.Exec(ctx, e.r(`WITH u AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::bigint[]) AS u(s, t, i, a, m, n, k)
		), kept AS (
			UPDATE {s}.es_parked_events AS p
			SET error = u.m, attempts = p.attempts + u.n, replay = p.replay AND p.xmin::text::bigint <> u.k, parked_at = now()
			FROM u WHERE u.k <> 0 AND p.subscription_name = u.s AND p.transaction_id = u.t::xid8 AND p.event_id = u.i
			RETURNING p.subscription_name, p.transaction_id, p.event_id
		)
		INSERT INTO {s}.es_parked_events AS p
			(subscription_name, transaction_id, event_id, aggregate_id, error, attempts)
		SELECT s, t::xid8, i, a, m, n FROM u
		WHERE NOT EXISTS (SELECT 1 FROM kept WHERE kept.subscription_name = u.s AND kept.transaction_id = u.t::xid8 AND kept.event_id = u.i)
		ON CONFLICT (subscription_name, transaction_id, event_id)
		DO UPDATE SET error = excluded.error, attempts = p.attempts + excluded.attempts, replay = false, parked_at = now()`),
		names, xids, ids, aggs, errs, attempts, marks)
	return interpretError(err, onRead)
}

func (e *executor) ParkedList(ctx context.Context, p *meowmxdriver.ParkedListParams) ([]*meowmxdriver.ParkedRow, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := e.db.Query(ctx, e.r(`SELECT subscription_name, transaction_id, event_id, aggregate_id, error, attempts, parked_at, replay,
			xmin::text::bigint
		FROM {s}.es_parked_events WHERE subscription_name = $1 AND (replay OR NOT $2)
		ORDER BY transaction_id, event_id LIMIT $3`), p.Subscription, p.ReplayOnly, limit)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*meowmxdriver.ParkedRow, error) {
		var r meowmxdriver.ParkedRow
		err := row.Scan(&r.Subscription, &r.Event.TransactionID, &r.Event.EventID, &r.AggregateID, &r.Error, &r.Attempts, &r.ParkedAt, &r.Replay, &r.Mark)
		return &r, err
	})
	return out, interpretError(err, onRead)
}

func (e *executor) ParkedDelete(ctx context.Context, p *meowmxdriver.ParkedDeleteParams) (bool, error) {
	tag, err := e.db.Exec(ctx, e.r(`DELETE FROM {s}.es_parked_events
		WHERE subscription_name = $1 AND transaction_id = $2::xid8 AND event_id = $3`),
		p.Subscription, p.Event.TransactionID, p.Event.EventID)
	if err != nil {
		return false, interpretError(err, onRead)
	}
	return tag.RowsAffected() == 1, nil
}

func (e *executor) ParkedMarkReplay(ctx context.Context, p *meowmxdriver.ParkedMarkReplayParams) (int64, error) {
	ids := p.EventIDs
	if ids == nil {
		ids = []int64{}
	}
	tag, err := e.db.Exec(ctx, e.r(`UPDATE {s}.es_parked_events SET replay = true
		WHERE subscription_name = $1 AND (cardinality($2::bigint[]) = 0 OR event_id = ANY($2::bigint[]))`),
		p.Subscription, ids)
	if err != nil {
		return 0, interpretError(err, onRead)
	}
	return tag.RowsAffected(), nil
}

func (e *executor) EventGet(ctx context.Context, p *meowmxdriver.EventGetParams) ([]*meowmxtype.RecordedEvent, error) {
	if _, err := e.queries(ctx); err != nil {
		return nil, err
	}
	return e.readEvents(ctx, len(p.IDs), e.r(`SELECT `+eventColumns+`
		FROM {s}.es_events e JOIN {s}.es_aggregates a ON a.id = e.aggregate_id
		WHERE e.id = ANY($1::bigint[]) ORDER BY e.transaction_id, e.id`), p.IDs)
}
