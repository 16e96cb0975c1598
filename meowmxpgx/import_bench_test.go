package meowmxpgx_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meowmx/meowmx"
)

// BenchmarkImport loads importEvents events (1 000 streams of 100) from
// NDJSON in memory with Store.Import, beside a plain pgx COPY of the same,
// already decoded rows straight into es_events in one transaction (no
// parsing, no stream checks, no es_aggregates), the category and the
// partition hash given so that the trigger of migrations 011 and 013
// does not fire, as for Import. Each side starts from
// empty tables (a TRUNCATE, timed with it).
func BenchmarkImport(b *testing.B) {
	const streams, perStream = 1000, 100
	env := newBenchEnv(b)
	ctx := context.Background()
	var file bytes.Buffer
	rows := make([][]any, 0, streams*perStream)
	at := time.Now()
	for v := range perStream {
		for s := range streams {
			id := fmt.Sprintf("s%d", s)
			line, _ := json.Marshal(map[string]any{"aggregate_type": "Account", "aggregate_id": id, "version": v,
				"event_type": "Deposited", "data": json.RawMessage(benchPayload), "recorded_at": at})
			file.Write(append(line, '\n'))
			sum := md5.Sum([]byte(id))
			rows = append(rows, []any{uint64(0), id, int32(v), "Deposited", []byte(benchPayload), nil, nil, at, "Account", int64(binary.BigEndian.Uint32(sum[:4]))})
		}
	}
	truncate := func() error {
		_, err := env.pool.Exec(ctx, `TRUNCATE `+env.schema+`.es_events, `+env.schema+`.es_aggregates`)
		return err
	}
	store := func() error {
		if err := truncate(); err != nil {
			return err
		}
		res, err := env.store.Import(ctx, meowmx.ReadNDJSON(bytes.NewReader(file.Bytes())), &meowmx.ImportOpts{BatchSize: envInt("MEOWMX_BENCH_IMPORT_BATCH", 0)})
		if err != nil {
			return err
		}
		if res.Written != int64(len(rows)) {
			return fmt.Errorf("wrote %d events, want %d", res.Written, len(rows))
		}
		return nil
	}
	plain := func() error {
		if err := truncate(); err != nil {
			return err
		}
		return pgx.BeginFunc(ctx, env.pool, func(tx pgx.Tx) error {
			var xid uint64
			if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()`).Scan(&xid); err != nil {
				return err
			}
			for _, r := range rows {
				r[0] = xid
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{env.schemaName, "es_events"},
				[]string{"transaction_id", "aggregate_id", "version", "event_type", "json_data", "metadata", "event_uuid", "created_at", "aggregate_type", "partition_hash"},
				pgx.CopyFromRows(rows))
			return err
		})
	}
	pairedBench(b, len(rows), store, plain)
}
