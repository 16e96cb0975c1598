package meowmxpgx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// partitionIndexName is the name of the index of groups of n partitions.
func partitionIndexName(n int) string {
	return "es_events_partition_" + strconv.Itoa(n)
}

// PartitionIndex implements meowmxdriver.PartitionIndexer. The index of
// groups of n partitions is on es_events ((partition_hash % n),
// transaction_id, id): each partition's events are in position order on
// their own, and a partition's read walks n times fewer entries than on
// the (transaction_id, id) index. It is one more index that every append
// writes to, made when the first worker of a group of n partitions
// starts, and kept.
//
// It is built CONCURRENTLY, so appends go on, by one session of the
// schema at a time (a session advisory lock): while another session
// builds, PartitionIndex returns nil at once. An index left invalid by an
// interrupted build is dropped and built again. A role that may not
// create indexes on es_events gets the error; reads go on without it.
func (d *Driver) PartitionIndex(ctx context.Context, n int) error {
	if n < 2 {
		return nil
	}
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return interpretError(err, onRead)
	}
	// The connection ends with the build: that releases the lock, and no
	// setting of this session returns to the pool.
	conn := pc.Hijack()
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	}()

	name := partitionIndexName(n)
	qualified := d.quoted + "." + pgx.Identifier{name}.Sanitize()
	var locked bool
	err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`,
		"meowmx.partition_index."+d.schema).Scan(&locked)
	if err != nil || !locked {
		return interpretError(err, onRead)
	}
	var valid bool
	err = conn.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, qualified).Scan(&valid)
	switch {
	case err == nil && valid:
		return nil
	case err == nil: // left by a build that did not finish
		if _, err := conn.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+qualified); err != nil {
			return fmt.Errorf("meowmxpgx: dropping the invalid index %s: %w", name, interpretError(err, onRead))
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return interpretError(err, onRead)
	}
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return interpretError(err, onRead)
	}
	_, err = conn.Exec(ctx, fmt.Sprintf(`CREATE INDEX CONCURRENTLY IF NOT EXISTS %s ON %s.es_events ((partition_hash %% %d), transaction_id, id)`,
		pgx.Identifier{name}.Sanitize(), d.quoted, n))
	if err != nil {
		return fmt.Errorf("meowmxpgx: building the index %s of consumer groups of %d partitions: %w", name, n, interpretError(err, onRead))
	}
	return nil
}
