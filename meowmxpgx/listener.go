package meowmxpgx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
// appending transaction's id, in decimal.
func (d *Driver) Channel() string { return d.channel }

// listener is the driver's meowmxdriver.Listener (see
// Driver.Capabilities).
type listener struct{ d *Driver }

// Listen opens a connection of its own (not one of the pool's: a LISTEN
// needs a session that no one else uses) with the pool's settings.
func (l listener) Listen(ctx context.Context, fn func(txID uint64)) error {
	conn, err := pgx.ConnectConfig(ctx, l.d.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("meowmxpgx: listen: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.d.channel}.Sanitize()); err != nil {
		return fmt.Errorf("meowmxpgx: listen: %w", err)
	}
	fn(0) // notifications sent before LISTEN are lost: wake everyone once
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("meowmxpgx: listen: %w", err)
		}
		tx, _ := strconv.ParseUint(n.Payload, 10, 64)
		fn(tx)
	}
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
