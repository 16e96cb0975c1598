package meowmxpgx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// channelName is the LISTEN/NOTIFY channel of a schema: a hash keeps it
// within PostgreSQL's 63 bytes whatever the schema's name.
func channelName(schema string) string {
	sum := sha256.Sum256([]byte(schema))
	return "meowmx_" + hex.EncodeToString(sum[:12])
}

// Channel returns the LISTEN/NOTIFY channel on which the driver announces
// appended events: "meowmx_" and a hash of the schema. The payload is the
// appending transaction's id, in decimal. A store's listening connection
// shows in pg_stat_activity with application_name "meowmx listen CHANNEL".
func (d *Driver) Channel() string { return d.channel }

// pythonChannel is the channel on which the Python meowmx client's
// trigger announces every inserted event (the payload is its aggregate
// type), in every schema of the database.
const pythonChannel = "channel_event_notify"

// listener is the driver's meowmxdriver.Listener (see
// Driver.Capabilities).
type listener struct{ d *Driver }

// Listen opens a connection of its own (not one of the pool's: a LISTEN
// needs a session that no one else uses) with the pool's settings. It
// listens on the driver's channel and on the Python client's. Between
// notifications it probes, every Config.ProbeInterval, the last value of
// es_events' id sequence: an append that no NOTIFY announced (plain SQL,
// a migration script, a writer whose process ended before its NOTIFY)
// moves it, and the probe wakes everyone. The probe reads one row of a
// sequence, which costs writers nothing.
func (l listener) Listen(ctx context.Context, fn func(txID uint64)) error {
	cfg := l.d.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "meowmx listen " + l.d.channel
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("meowmxpgx: listen: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	for _, ch := range []string{l.d.channel, pythonChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("meowmxpgx: listen: %w", err)
		}
	}
	probe := l.d.probeInterval > 0
	var head *int64
	again := false // wake once more at the next probe
	if probe {
		if head, err = l.head(ctx, conn); err != nil {
			return err
		}
	}
	fn(0) // notifications sent before LISTEN are lost: wake everyone once
	for {
		wait := ctx
		cancel := context.CancelFunc(func() {})
		if probe {
			wait, cancel = context.WithTimeout(ctx, l.d.probeInterval)
		}
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil && n.Channel == l.d.channel:
			tx, _ := strconv.ParseUint(n.Payload, 10, 64)
			fn(tx)
		case err == nil:
			fn(0) // the Python client's: no transaction id
		case ctx.Err() == nil && probe && errors.Is(err, context.DeadlineExceeded):
			now, err := l.head(ctx, conn)
			if err != nil {
				return err
			}
			// The sequence moves before its writer commits, and may move
			// before the writer has a transaction id: a reader woken then
			// can find nothing and no transaction to wait for. So a
			// change wakes everyone twice, now and at the next probe, by
			// when the writer has its id (and woken readers wait for it).
			changed := !equalHead(now, head)
			if changed || again {
				fn(0)
			}
			head, again = now, changed
		default:
			return fmt.Errorf("meowmxpgx: listen: %w", err)
		}
	}
}

// head returns the last value of es_events' id sequence, nil before its
// first use.
func (l listener) head(ctx context.Context, conn *pgx.Conn) (*int64, error) {
	var v *int64
	err := conn.QueryRow(ctx, `SELECT pg_sequence_last_value(pg_get_serial_sequence($1, 'id')::regclass)`,
		l.d.quoted+".es_events").Scan(&v)
	if err != nil {
		return nil, fmt.Errorf("meowmxpgx: listen: probe: %w", interpretError(err, onRead))
	}
	return v, nil
}

func equalHead(a, b *int64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// Notify sends the notification in a transaction of its own that commits
// without waiting for its WAL flush: a NOTIFY takes a transaction id, so
// its commit is flushed like any other, yet it announces transactions
// already committed and nothing of it needs to survive a crash.
func (l listener) Notify(ctx context.Context, txID uint64) error {
	_, err := l.d.pool.Exec(ctx, `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)`,
		l.d.channel, strconv.FormatUint(txID, 10))
	return interpretError(err, onRead)
}
