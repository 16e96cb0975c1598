package meowmxpgx

import (
	"context"
	"math"

	"github.com/meowmx/meowmx/meowmxdriver"
)

func (e *executor) SnapshotGetLatest(ctx context.Context, p *meowmxdriver.SnapshotGetLatestParams) (*meowmxdriver.SnapshotRow, error) {
	q, err := e.queries(ctx)
	if err != nil {
		return nil, err
	}
	maxVersion := p.MaxVersion
	if maxVersion < 0 || maxVersion > math.MaxInt32 {
		maxVersion = math.MaxInt32
	}
	var r meowmxdriver.SnapshotRow
	err = e.db.QueryRow(ctx, q.snapshotGet, p.AggregateID, maxVersion).Scan(
		&r.AggregateID, &r.Version, &r.Data, &r.AggregateType, &r.SnapshotVersion, &r.StateShape)
	if err != nil {
		return nil, interpretError(err, onRead)
	}
	return &r, nil
}

func (e *executor) SnapshotSave(ctx context.Context, p *meowmxdriver.SnapshotSaveParams) error {
	q, err := e.queries(ctx)
	if err != nil {
		return err
	}
	_, err = e.db.Exec(ctx, q.snapshotSave, p.AggregateID, p.Version, string(p.Data),
		p.AggregateType, p.SnapshotVersion, p.StateShape)
	return interpretError(err, onRead)
}
