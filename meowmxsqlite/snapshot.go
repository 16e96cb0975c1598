package meowmxsqlite

import (
	"cmp"
	"context"
	"database/sql"
	"math"

	"github.com/meowmx/meowmx/meowmxdriver"
)

const (
	snapshotGetSQL = `SELECT aggregate_id, version, json_data,
			COALESCE(aggregate_type, ''), COALESCE(snapshot_version, -1), COALESCE(state_shape, '')
		FROM es_aggregate_snapshots
		WHERE aggregate_id = ?1 AND version <= ?2
		ORDER BY version DESC LIMIT 1`
	snapshotSaveSQL = `INSERT INTO es_aggregate_snapshots
			(aggregate_id, version, json_data, aggregate_type, snapshot_version, state_shape)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)
		ON CONFLICT (aggregate_id, version) DO UPDATE SET json_data = excluded.json_data,
			aggregate_type = excluded.aggregate_type, snapshot_version = excluded.snapshot_version,
			state_shape = excluded.state_shape`
)

func (e *executor) SnapshotGetLatest(ctx context.Context, p *meowmxdriver.SnapshotGetLatestParams) (*meowmxdriver.SnapshotRow, error) {
	maxVersion := p.MaxVersion
	if maxVersion < 0 {
		maxVersion = math.MaxInt64
	}
	rows, err := e.query(ctx, snapshotGetSQL, p.AggregateID, maxVersion)
	if err != nil {
		return nil, interpretError(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, interpretError(cmp.Or(rows.Err(), sql.ErrNoRows))
	}
	var r meowmxdriver.SnapshotRow
	var data string
	if err := rows.Scan(&r.AggregateID, &r.Version, &data, &r.AggregateType, &r.SnapshotVersion, &r.StateShape); err != nil {
		return nil, interpretError(err)
	}
	r.Data = []byte(data)
	return &r, nil
}

func (e *executor) SnapshotSave(ctx context.Context, p *meowmxdriver.SnapshotSaveParams) error {
	err := e.inWriteTx(ctx, []string{snapshotSaveSQL}, func(tx txStmts) (bool, error) {
		_, err := tx.ExecContext(ctx, snapshotSaveSQL, p.AggregateID, p.Version, string(p.Data),
			p.AggregateType, p.SnapshotVersion, p.StateShape)
		return err == nil, err
	})
	return interpretError(err)
}
