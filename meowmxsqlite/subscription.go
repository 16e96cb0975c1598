package meowmxsqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/meowmx/meowmx/meowmxdriver"
	"github.com/meowmx/meowmx/meowmxtype"
)

// Subscriptions on SQLite. One writer commits at a time and positions
// follow commit order, so there is no horizon: HorizonGet returns a zero
// Horizon and nothing is ever waiting or ahead. A subscription's lease
// (SubscriptionLease) is a row of the database file, so one worker owns
// it across the processes that share the file; the fenced checkpoint
// (SubscriptionCommit) keeps handlers exactly-once through a hand-over.
//
// The filters are JSON arrays (NULL: no filter). es_parked_events rows are
// deleted with their subscription by SubscriptionDelete itself: the
// connections do not turn on foreign keys.

// filterWhere selects events of e joined to a by the JSON arrays ?n and
// ?n+1 (NULL: no filter).
func filterWhere(n int) string {
	return fmt.Sprintf(` AND (?%d IS NULL OR a.aggregate_type IN (SELECT value FROM json_each(?%d)))
		AND (?%d IS NULL OR e.event_type IN (SELECT value FROM json_each(?%d)))`, n, n, n+1, n+1)
}

// filterJSON maps a filter to its stored form: NULL when empty.
func filterJSON(a []string) any {
	if len(a) == 0 {
		return nil
	}
	return stringsJSON(a)
}

func parseFilter(s sql.NullString) ([]string, error) {
	if !s.Valid {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(s.String), &out); err != nil {
		return nil, fmt.Errorf("meowmxsqlite: subscription filter %q: %w", s.String, err)
	}
	return out, nil
}

// write runs one statement that writes: in the caller's transaction, or
// in a write transaction of its own. It returns the rows affected.
func (e *executor) write(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := e.inWriteTx(ctx, []string{query}, func(tx txStmts) (bool, error) {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return false, err
		}
		n, err = res.RowsAffected()
		return err == nil, err
	})
	return n, interpretError(err)
}

const subscriptionColumns = `subscription_name, last_transaction_id, last_event_id, aggregate_types, event_types,
	COALESCE(group_name, ''), COALESCE(partition_no, 0), COALESCE(partition_count, 0)`

func scanSubscription(rows *sql.Rows, extra ...any) (*meowmxtype.SubscriptionInfo, error) {
	var s meowmxtype.SubscriptionInfo
	var types, events sql.NullString
	dest := append([]any{&s.Name, &s.Position.TransactionID, &s.Position.EventID, &types, &events,
		&s.Group, &s.Partition, &s.Partitions}, extra...)
	if err := rows.Scan(dest...); err != nil {
		return nil, interpretError(err)
	}
	if s.Partitions < 2 {
		s.Partitions = 0
	}
	var err error
	if s.AggregateTypes, err = parseFilter(types); err != nil {
		return nil, err
	}
	if s.EventTypes, err = parseFilter(events); err != nil {
		return nil, err
	}
	return &s, nil
}

// ensureSQL creates a subscription or stores the filter of an existing
// one, leaving its checkpoint alone, and returns its row; an existing row
// whose partitions are not ?7 (0: none) is left alone, and returns no row.
// The WHERE true settles SQLite's parsing of an upsert on a SELECT with a
// join.
const ensureSQL = `INSERT INTO es_event_subscriptions AS s (subscription_name, last_transaction_id, last_event_id,
		aggregate_types, event_types, partition_count, filter_stored)
	SELECT ?1, COALESCE(h.transaction_id, CASE WHEN ?4 THEN 0 ELSE ?2 END), COALESCE(h.id, CASE WHEN ?4 THEN 0 ELSE ?3 END),
		?5, ?6, NULLIF(?7, 0), 1
	FROM (SELECT 1) one LEFT JOIN (
		SELECT transaction_id, id FROM es_events WHERE ?4 ORDER BY id DESC LIMIT 1) h ON true
	WHERE true
	ON CONFLICT (subscription_name) DO UPDATE
		SET aggregate_types = excluded.aggregate_types, event_types = excluded.event_types, filter_stored = 1
		WHERE COALESCE(s.partition_count, 0) = ?7 AND s.group_name IS NULL
	RETURNING ` + subscriptionColumns

// ensurePartitionsSQL creates a group's partitions (?1 the group, ?2 how
// many), at its checkpoint, or stores their filter.
const ensurePartitionsSQL = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
	INSERT INTO es_event_subscriptions AS s (subscription_name, last_transaction_id, last_event_id,
		aggregate_types, event_types, group_name, partition_no, partition_count, filter_stored)
	SELECT g.subscription_name || '#' || n.i, g.last_transaction_id, g.last_event_id, g.aggregate_types, g.event_types,
		g.subscription_name, n.i, ?2, 1
	FROM es_event_subscriptions g, n WHERE g.subscription_name = ?1
	ON CONFLICT (subscription_name) DO UPDATE
		SET aggregate_types = excluded.aggregate_types, event_types = excluded.event_types, filter_stored = 1
		WHERE s.group_name = excluded.group_name`

// SubscriptionEnsure implements meowmxdriver.SubscriptionExecutor. A new
// subscription at the head starts after the last event committed: the
// statement reads the head in the write transaction it runs in.
func (e *executor) SubscriptionEnsure(ctx context.Context, p *meowmxdriver.SubscriptionEnsureParams) (*meowmxtype.SubscriptionInfo, error) {
	partitions := p.Partitions
	if partitions < 2 {
		partitions = 0
	}
	const stored = `SELECT ` + subscriptionColumns + ` FROM es_event_subscriptions WHERE subscription_name = ?1`
	var info *meowmxtype.SubscriptionInfo
	var scanErr error // already interpreted
	err := e.inWriteTx(ctx, []string{ensureSQL, ensurePartitionsSQL, stored}, func(tx txStmts) (bool, error) {
		rows, err := tx.QueryContext(ctx, ensureSQL, p.Name, int64(p.At.TransactionID), p.At.EventID, p.AtHead,
			filterJSON(p.AggregateTypes), filterJSON(p.EventTypes), partitions)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		written := rows.Next()
		if written {
			info, scanErr = scanSubscription(rows)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil || scanErr != nil {
			return false, err
		}
		if !written { // partitions differ: return the row as stored
			if rows, err = tx.QueryContext(ctx, stored, p.Name); err != nil {
				return false, err
			}
			defer rows.Close()
			if !rows.Next() {
				return false, cmp.Or(rows.Err(), sql.ErrNoRows)
			}
			info, scanErr = scanSubscription(rows)
			return false, nil
		}
		if partitions > 0 {
			if _, err := tx.ExecContext(ctx, ensurePartitionsSQL, p.Name, partitions); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	if scanErr != nil {
		return nil, scanErr
	}
	if err != nil {
		return nil, interpretError(err)
	}
	return info, nil
}

func (e *executor) SubscriptionGet(ctx context.Context, p *meowmxdriver.SubscriptionGetParams) (*meowmxtype.SubscriptionInfo, error) {
	rows, err := e.query(ctx, `SELECT `+subscriptionColumns+` FROM es_event_subscriptions WHERE subscription_name = ?1`, p.Name)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, interpretError(cmp.Or(rows.Err(), sql.ErrNoRows))
	}
	return scanSubscription(rows)
}

func (e *executor) SubscriptionList(ctx context.Context, p *meowmxdriver.SubscriptionListParams) ([]*meowmxtype.SubscriptionInfo, error) {
	// The lag counts the first LagCap+1 events after each checkpoint: a
	// bounded walk. Beyond it, the estimate is the difference of event ids.
	// A group's own row counts nothing: its partitions do.
	const behind = `FROM es_events e JOIN es_aggregates a ON a.id = e.aggregate_id
		WHERE e.id > s.last_event_id
		  AND (s.filter_stored OR s.f_types IS NOT NULL)
		  AND (s.f_types IS NULL OR a.aggregate_type IN (SELECT value FROM json_each(s.f_types)))
		  AND (s.event_types IS NULL OR e.event_type IN (SELECT value FROM json_each(s.event_types)))
		  AND (s.group_name IS NULL OR ` + partitionFunc + `(e.aggregate_id, s.partition_count) = s.partition_no)
		  AND (s.group_name IS NOT NULL OR COALESCE(s.partition_count, 0) < 2)
		ORDER BY e.id`
	// A row that the Python client created has no stored filter: its
	// aggregate type is that of the event at its checkpoint (see the
	// PostgreSQL driver), else its lag is unknown.
	rows, err := e.query(ctx, `SELECT s.subscription_name, s.last_transaction_id, s.last_event_id,
			s.f_types, s.event_types,
			COALESCE(s.group_name, ''), COALESCE(s.partition_no, 0), COALESCE(s.partition_count, 0),
			(SELECT count(*) FROM (SELECT 1 `+behind+` LIMIT ?1)),
			(SELECT e.created_at `+behind+` LIMIT 1),
			(SELECT count(*) FROM es_parked_events p WHERE p.subscription_name = s.subscription_name),
			max(COALESCE((SELECT max(id) FROM es_events), 0) - s.last_event_id, 0),
			CASE WHEN s.lease_until > `+sqlNow+` THEN s.owner_id END, COALESCE(s.owner_host, ''), COALESCE(s.owner_pid, 0),
			s.lease_until, s.progress_at, `+sqlNow+`,
			(SELECT json_group_array(w.host || '/' || w.pid || '/' || w.worker_id) FROM es_subscription_workers w
			 WHERE w.subscription_name = s.subscription_name AND w.seen_until > `+sqlNow+`
			   AND w.worker_id IS NOT (CASE WHEN s.lease_until > `+sqlNow+` THEN s.owner_id END)),
			NOT s.filter_stored, s.f_types IS NULL AND NOT s.filter_stored
		FROM (SELECT s0.*, CASE WHEN s0.filter_stored THEN s0.aggregate_types ELSE (
				SELECT json_array(a.aggregate_type) FROM es_events e JOIN es_aggregates a ON a.id = e.aggregate_id
				WHERE e.id = s0.last_event_id) END AS f_types
			FROM es_event_subscriptions s0) s
		ORDER BY s.subscription_name`, p.LagCap+1)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var out []*meowmxtype.SubscriptionInfo
	for rows.Next() {
		var lag, parked, estimate int64
		var oldest, ownerID, leaseUntil, progressAt sql.NullString
		var owner meowmxtype.SubscriptionOwner
		var now, standbys string
		var inferred, unknown bool
		s, err := scanSubscription(rows, &lag, &oldest, &parked, &estimate, &ownerID, &owner.Host, &owner.PID, &leaseUntil, &progressAt, &now, &standbys,
			&inferred, &unknown)
		if err != nil {
			return nil, err
		}
		s.FilterInferred, s.LagUnknown = inferred && !unknown, unknown
		var ws []string
		if err := json.Unmarshal([]byte(standbys), &ws); err != nil {
			return nil, fmt.Errorf("meowmxsqlite: standbys %q: %w", standbys, err)
		}
		s.Standbys = meowmxtype.ParseSubscriptionOwners(ws)
		if err := leaseInfo(s, owner, ownerID, leaseUntil, progressAt, now); err != nil {
			return nil, err
		}
		s.Lag, s.Parked = lag, parked
		if lag > int64(p.LagCap) && !unknown {
			s.Lag, s.LagEstimated = max(estimate, lag), true
		}
		if s.Partitions > 0 && s.Group == "" {
			s.Lag, s.LagEstimated = 0, false // counted by its partitions
		}
		if oldest.Valid {
			if s.OldestUnhandled, err = parseTime(oldest.String); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, interpretError(rows.Err())
}

// advance moves the checkpoint, fenced on p.From, for CommitAdvance.
func (e *executor) advance(ctx context.Context, p *meowmxdriver.SubscriptionCommitParams) (bool, error) {
	n, err := e.write(ctx, `UPDATE es_event_subscriptions SET last_transaction_id = ?2, last_event_id = ?3,
			lease_until = CASE WHEN ?6 <> '' THEN `+sqlNowPlus("?7")+` ELSE lease_until END,
			progress_at = CASE WHEN ?6 <> '' THEN `+sqlNow+` ELSE progress_at END
		WHERE subscription_name = ?1 AND last_transaction_id = ?4 AND last_event_id = ?5
		  AND (?6 = '' OR owner_id = ?6)`,
		p.Name, int64(p.To.TransactionID), p.To.EventID, int64(p.From.TransactionID), p.From.EventID, p.Owner, p.TTL.Seconds())
	return n == 1, err
}

// sqlNow is the time now, as the lease columns store it: UTC text of
// fixed width, whose text order is time order.
const sqlNow = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`

// sqlNowPlus is sqlNow plus the seconds in the parameter p.
func sqlNowPlus(p string) string {
	return `strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+' || ` + p + ` || ' seconds')`
}

func (e *executor) SubscriptionLease(ctx context.Context, p *meowmxdriver.SubscriptionLeaseParams) (*meowmxdriver.SubscriptionLeaseResult, error) {
	var r meowmxdriver.SubscriptionLeaseResult
	take := `UPDATE es_event_subscriptions
		SET owner_id = ?2, owner_host = ?3, owner_pid = ?4, lease_until = ` + sqlNowPlus("?5") + `,
			progress_at = CASE WHEN ?6 THEN ` + sqlNow + ` ELSE progress_at END
		WHERE subscription_name = ?1
		  AND (owner_id IS NULL OR owner_id = ?2 OR lease_until IS NULL OR lease_until < ` + sqlNow + `)`
	holder := `SELECT COALESCE(owner_id, ''), COALESCE(owner_host, ''), COALESCE(owner_pid, 0), last_transaction_id, last_event_id,
			progress_at, ` + sqlNow + `
		FROM es_event_subscriptions WHERE subscription_name = ?1`
	seen := `INSERT INTO es_subscription_workers (subscription_name, worker_id, host, pid, seen_until)
		SELECT ?1, ?2, ?3, ?4, ` + sqlNowPlus("?5") + `
		WHERE EXISTS (SELECT 1 FROM es_event_subscriptions WHERE subscription_name = ?1)
		ON CONFLICT (subscription_name, worker_id) DO UPDATE SET seen_until = excluded.seen_until`
	err := e.inWriteTx(ctx, []string{take, holder, seen}, func(tx txStmts) (bool, error) {
		res, err := tx.ExecContext(ctx, take, p.Name, p.Owner.ID, p.Owner.Host, p.Owner.PID, p.TTL.Seconds(), p.Progress)
		if err != nil {
			return false, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, seen, p.Name, p.Owner.ID, p.Owner.Host, p.Owner.PID, p.TTL.Seconds()); err != nil {
			return false, err
		}
		r.Held = n == 1
		var txID int64
		var progress sql.NullString
		var now string
		if err := tx.QueryRowContext(ctx, holder, p.Name).Scan(&r.Holder.ID, &r.Holder.Host, &r.Holder.PID, &txID,
			&r.Position.EventID, &progress, &now); err != nil {
			return false, err
		}
		r.Position.TransactionID = uint64(txID)
		r.SinceProgress = -1
		if progress.Valid {
			at, err1 := parseTime(progress.String)
			nt, err2 := parseTime(now)
			if err := errors.Join(err1, err2); err != nil {
				return false, err
			}
			r.SinceProgress = nt.Sub(at)
		}
		return true, nil
	})
	if err != nil {
		return nil, interpretError(err)
	}
	return &r, nil
}

func (e *executor) SubscriptionJoin(ctx context.Context, p *meowmxdriver.SubscriptionJoinParams) ([]meowmxtype.SubscriptionOwner, error) {
	seen := `INSERT INTO es_subscription_workers (subscription_name, worker_id, host, pid, seen_until)
		SELECT ?1, ?2, ?3, ?4, ` + sqlNowPlus("?5") + `
		WHERE EXISTS (SELECT 1 FROM es_event_subscriptions WHERE subscription_name = ?1)
		ON CONFLICT (subscription_name, worker_id) DO UPDATE SET seen_until = excluded.seen_until`
	const live = `SELECT host || '/' || pid || '/' || worker_id FROM es_subscription_workers
		WHERE subscription_name = ?1 AND seen_until > ` + sqlNow
	var out []meowmxtype.SubscriptionOwner
	err := e.inWriteTx(ctx, []string{seen, live}, func(tx txStmts) (bool, error) {
		res, err := tx.ExecContext(ctx, seen, p.Name, p.Owner.ID, p.Owner.Host, p.Owner.PID, p.TTL.Seconds())
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return false, cmp.Or(err, sql.ErrNoRows)
		}
		rows, err := tx.QueryContext(ctx, live, p.Name)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		out = nil
		for rows.Next() {
			var w string
			if err := rows.Scan(&w); err != nil {
				return false, err
			}
			out = append(out, meowmxtype.ParseSubscriptionOwner(w))
		}
		return true, rows.Err()
	})
	if err != nil {
		return nil, interpretError(err)
	}
	return out, nil
}

func (e *executor) SubscriptionRelease(ctx context.Context, p *meowmxdriver.SubscriptionReleaseParams) error {
	const forget = `DELETE FROM es_subscription_workers WHERE subscription_name = ?1 AND worker_id = ?2`
	const release = `UPDATE es_event_subscriptions SET owner_id = NULL, lease_until = NULL
		WHERE subscription_name = ?1 AND owner_id = ?2`
	err := e.inWriteTx(ctx, []string{forget, release}, func(tx txStmts) (bool, error) {
		if _, err := tx.ExecContext(ctx, forget, p.Name, p.Owner); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, release, p.Name, p.Owner)
		return err == nil, err
	})
	return interpretError(err)
}

func (e *executor) SubscriptionSet(ctx context.Context, p *meowmxdriver.SubscriptionSetParams) (bool, error) {
	var tx, id any
	if p.To != nil {
		tx, id = int64(p.To.TransactionID), p.To.EventID
	}
	n, err := e.write(ctx, `UPDATE es_event_subscriptions
		SET last_transaction_id = COALESCE(?2, last_transaction_id),
		    last_event_id = COALESCE(?3, last_event_id),
		    aggregate_types = CASE WHEN ?4 THEN ?5 ELSE aggregate_types END,
		    event_types = CASE WHEN ?4 THEN ?6 ELSE event_types END,
		    filter_stored = filter_stored OR ?4
		WHERE subscription_name = ?1`,
		p.Name, tx, id, p.SetFilter, filterJSON(p.AggregateTypes), filterJSON(p.EventTypes))
	return n == 1, err
}

func (e *executor) SubscriptionDelete(ctx context.Context, p *meowmxdriver.SubscriptionDeleteParams) (bool, error) {
	// The subscription and, when it is a group, its partitions.
	const of = `(SELECT subscription_name FROM es_event_subscriptions WHERE subscription_name = ?1 OR group_name = ?1)`
	const deleteParked = `DELETE FROM es_parked_events WHERE subscription_name IN ` + of
	const deleteWorkers = `DELETE FROM es_subscription_workers WHERE subscription_name IN ` + of
	const deleteParts = `DELETE FROM es_event_subscriptions WHERE group_name = ?1`
	const deleteSub = `DELETE FROM es_event_subscriptions WHERE subscription_name = ?1`
	var n int64
	err := e.inWriteTx(ctx, []string{deleteParked, deleteWorkers, deleteParts, deleteSub}, func(tx txStmts) (bool, error) {
		for _, q := range []string{deleteParked, deleteWorkers, deleteParts} {
			if _, err := tx.ExecContext(ctx, q, p.Name); err != nil {
				return false, err
			}
		}
		res, err := tx.ExecContext(ctx, deleteSub, p.Name)
		if err != nil {
			return false, err
		}
		n, err = res.RowsAffected()
		return err == nil, err
	})
	return n == 1, interpretError(err)
}

func (e *executor) SubscriptionHead(ctx context.Context, p *meowmxdriver.SubscriptionHeadParams) (*meowmxtype.Position, error) {
	rows, err := e.query(ctx, `SELECT e.transaction_id, e.id
		FROM es_events e JOIN es_aggregates a ON a.id = e.aggregate_id
		WHERE true`+filterWhere(1)+`
		  AND (?3 < 2 OR `+partitionFunc+`(e.aggregate_id, ?3) = ?4)
		ORDER BY e.id DESC LIMIT 1`, filterJSON(p.AggregateTypes), filterJSON(p.EventTypes), p.Partitions, p.Partition)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, interpretError(rows.Err())
	}
	var pos meowmxtype.Position
	if err := rows.Scan(&pos.TransactionID, &pos.EventID); err != nil {
		return nil, interpretError(err)
	}
	return &pos, nil
}

// HorizonGet returns a zero Horizon: SQLite has none.
func (e *executor) HorizonGet(context.Context) (*meowmxdriver.Horizon, error) {
	return &meowmxdriver.Horizon{}, nil
}

// HorizonHolders returns nil: nothing holds a horizon back on SQLite.
func (e *executor) HorizonHolders(context.Context, *meowmxdriver.HorizonHoldersParams) ([]*meowmxtype.HorizonHolder, error) {
	return nil, nil
}

func (e *executor) ParkedInsert(ctx context.Context, p *meowmxdriver.ParkedInsertParams) error {
	// The replay column counts the marks (0: not marked): a row listed at
	// Mark keeps its mark when it was marked again since (?7 is Mark; 0
	// clears it).
	const insert = `INSERT INTO es_parked_events
			(subscription_name, transaction_id, event_id, aggregate_id, error, attempts)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)
		ON CONFLICT (subscription_name, transaction_id, event_id) DO UPDATE SET
			error = excluded.error, attempts = attempts + excluded.attempts,
			replay = CASE WHEN ?7 <> 0 AND replay <> ?7 THEN replay ELSE 0 END,
			parked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`
	err := e.inWriteTx(ctx, []string{insert}, func(tx txStmts) (bool, error) {
		for _, r := range p.Rows {
			if _, err := tx.ExecContext(ctx, insert, r.Subscription, int64(r.Event.TransactionID), r.Event.EventID,
				r.AggregateID, r.Error, r.Attempts, r.Mark); err != nil {
				return false, err
			}
		}
		return true, nil
	})
	return interpretError(err)
}

func (e *executor) ParkedList(ctx context.Context, p *meowmxdriver.ParkedListParams) ([]*meowmxdriver.ParkedRow, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, err := e.query(ctx, `SELECT subscription_name, transaction_id, event_id, aggregate_id, error, attempts, parked_at, replay
		FROM es_parked_events WHERE subscription_name = ?1 AND (replay OR NOT ?2)
		ORDER BY transaction_id, event_id LIMIT ?3`, p.Subscription, p.ReplayOnly, limit)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	var out []*meowmxdriver.ParkedRow
	for rows.Next() {
		var r meowmxdriver.ParkedRow
		var at string
		if err := rows.Scan(&r.Subscription, &r.Event.TransactionID, &r.Event.EventID, &r.AggregateID,
			&r.Error, &r.Attempts, &at, &r.Mark); err != nil {
			return nil, interpretError(err)
		}
		r.Replay = r.Mark != 0
		if r.ParkedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("meowmxsqlite: parked_at %q: %w", at, err)
		}
		out = append(out, &r)
	}
	return out, interpretError(rows.Err())
}

func (e *executor) ParkedDelete(ctx context.Context, p *meowmxdriver.ParkedDeleteParams) (bool, error) {
	n, err := e.write(ctx, `DELETE FROM es_parked_events
		WHERE subscription_name = ?1 AND transaction_id = ?2 AND event_id = ?3`,
		p.Subscription, int64(p.Event.TransactionID), p.Event.EventID)
	return n == 1, err
}

func (e *executor) ParkedMarkReplay(ctx context.Context, p *meowmxdriver.ParkedMarkReplayParams) (int64, error) {
	ids := p.EventIDs
	if ids == nil {
		ids = []int64{}
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return 0, err
	}
	return e.write(ctx, `UPDATE es_parked_events SET replay = replay + 1
		WHERE subscription_name = ?1 AND (json_array_length(?2) = 0 OR event_id IN (SELECT value FROM json_each(?2)))`,
		p.Subscription, string(b))
}

func (e *executor) EventGet(ctx context.Context, p *meowmxdriver.EventGetParams) ([]*meowmxtype.RecordedEvent, error) {
	b, err := json.Marshal(p.IDs)
	if err != nil {
		return nil, err
	}
	return e.readEvents(ctx, `SELECT `+eventColumns+eventsFrom+`
		WHERE e.id IN (SELECT value FROM json_each(?1)) ORDER BY e.id`, string(b))
}

// leaseInfo fills in a subscription's owner, lease and progress from the
// stored times and the database's now.
func leaseInfo(s *meowmxtype.SubscriptionInfo, owner meowmxtype.SubscriptionOwner, ownerID, leaseUntil, progressAt sql.NullString, now string) error {
	at, err := parseTime(now)
	if err != nil {
		return err
	}
	s.SinceProgress = -1
	if ownerID.Valid {
		owner.ID = ownerID.String
		s.Owner = &owner
	}
	if leaseUntil.Valid {
		t, err := parseTime(leaseUntil.String)
		if err != nil {
			return err
		}
		s.LeaseLeft = max(t.Sub(at), 0)
	}
	if progressAt.Valid {
		t, err := parseTime(progressAt.String)
		if err != nil {
			return err
		}
		s.SinceProgress = at.Sub(t)
	}
	return nil
}
