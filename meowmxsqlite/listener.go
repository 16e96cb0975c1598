package meowmxsqlite

import (
	"context"
	"database/sql"
	"time"
)

// ProbeIntervalDefault is the default for Config.ProbeInterval.
const ProbeIntervalDefault = 25 * time.Millisecond

// probeListener is the driver's meowmxdriver.Listener: SQLite has no
// NOTIFY, so a store's subscriptions learn of events that other processes
// appended to the same file by probing the last event id every
// Config.ProbeInterval, one indexed read of the read pool. Appends of the
// store's own process wake its subscriptions directly.
type probeListener struct {
	d        *Driver
	interval time.Duration
}

// Listen calls fn(0) at once, then whenever the last event id changes,
// until ctx ends or a probe fails.
func (l probeListener) Listen(ctx context.Context, fn func(txID uint64)) error {
	head, err := l.head(ctx)
	if err != nil {
		return err
	}
	fn(0)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.d.kick:
			fn(0)
			continue
		case <-t.C:
		}
		now, err := l.head(ctx)
		if err != nil {
			return err
		}
		if now != head {
			head = now
			fn(0)
		}
	}
}

func (l probeListener) head(ctx context.Context) (sql.NullInt64, error) {
	var id sql.NullInt64
	rows, err := (&executor{d: l.d, db: l.d.read}).query(ctx, `SELECT max(id) FROM es_events`)
	if err != nil {
		return id, interpretError(err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return id, interpretError(err)
		}
	}
	return id, interpretError(rows.Err())
}

// Notify wakes a Listen of this driver at once, with no transaction id
// (SQLite has none); other processes find the events by their probe.
func (l probeListener) Notify(context.Context, uint64) error {
	select {
	case l.d.kick <- struct{}{}:
	default:
	}
	return nil
}
