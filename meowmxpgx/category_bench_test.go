package meowmxpgx_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meowmx/meowmx"
)

// categoryEvents is how many events each of the two categories of
// BenchmarkCategoryRead holds: MEOWMX_BENCH_CATEGORY_EVENTS, else 200 000.
func categoryEvents(b *testing.B) int {
	if s := os.Getenv("MEOWMX_BENCH_CATEGORY_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			b.Fatalf("MEOWMX_BENCH_CATEGORY_EVENTS=%q: want a number of at least 1000", s)
		}
		return n
	}
	return 200_000
}

// BenchmarkCategoryRead reads every event of one category of two, mixed
// event by event (n each, streams of 100 events), with Store.IterAll
// (pages of 1 000), beside Message DB's get_category_messages shape on a
// messages table holding the same events: a keyset page of 1 000 on an
// index of (category, global_position), scanned into the same columns.
// Each operation does both, alternating which goes first.
func BenchmarkCategoryRead(b *testing.B) {
	env := newBenchEnv(b)
	ctx := context.Background()
	n := categoryEvents(b)
	s := env.schema
	err := pgx.BeginFunc(ctx, env.pool, func(tx pgx.Tx) error {
		for _, sql := range []string{
			`INSERT INTO ` + s + `.es_aggregates (id, version, aggregate_type)
				SELECT c || '-' || g, 99, c FROM generate_series(0, $1::int / 100 - 1) g, unnest(ARRAY['alpha', 'beta']) c`,
			`INSERT INTO ` + s + `.es_events (transaction_id, aggregate_id, version, event_type, json_data, aggregate_type)
				SELECT pg_current_xact_id(), c || '-' || (g % ($1::int / 100)), g / ($1::int / 100), 'Deposited', $2::json, c
				FROM generate_series(0, $1::int - 1) g, unnest(ARRAY['alpha', 'beta']) c ORDER BY g, c`,
			// Message DB's messages table and category index, restated.
			`CREATE TABLE ` + s + `.messages (
				global_position bigserial PRIMARY KEY, stream_name text NOT NULL, type text NOT NULL,
				position bigint NOT NULL, data jsonb, metadata jsonb, id uuid NOT NULL DEFAULT gen_random_uuid(),
				time timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'))`,
			`INSERT INTO ` + s + `.messages (stream_name, type, position, data)
				SELECT c || '-' || (g % ($1::int / 100)), 'Deposited', g / ($1::int / 100), $2::jsonb
				FROM generate_series(0, $1::int - 1) g, unnest(ARRAY['alpha', 'beta']) c ORDER BY g, c`,
			`CREATE INDEX ON ` + s + `.messages (split_part(stream_name, '-', 1), global_position)`,
			`CREATE UNIQUE INDEX ON ` + s + `.messages (stream_name, position)`,
		} {
			args := []any{n, benchPayload}
			if !contains(sql, "$2") {
				args = args[:1]
			}
			if !contains(sql, "$1") {
				args = nil
			}
			if _, err := tx.Exec(ctx, sql, args...); err != nil {
				return fmt.Errorf("%s: %w", sql, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range []string{"es_events", "es_aggregates", "messages"} {
		if _, err := env.pool.Exec(ctx, `VACUUM ANALYZE `+s+`.`+t); err != nil {
			b.Fatal(err)
		}
	}
	store := func() error {
		read := 0
		for ev, err := range env.store.IterAll(ctx, &meowmx.ReadAllOpts{AggregateTypes: []string{"alpha"}}) {
			if err != nil {
				return err
			}
			if ev.StreamID.Type != "alpha" {
				return fmt.Errorf("read an event of %s", ev.StreamID.Type)
			}
			read++
		}
		if read != n {
			return fmt.Errorf("read %d events, want %d", read, n)
		}
		return nil
	}
	categoryPage := `SELECT global_position, stream_name, type, position, data::text, metadata::text, id, time
		FROM ` + s + `.messages
		WHERE split_part(stream_name, '-', 1) = $1 AND global_position > $2
		ORDER BY global_position LIMIT 1000`
	plain := func() error {
		read, after := 0, int64(0)
		for {
			rows, _ := env.pool.Query(ctx, categoryPage, "alpha", after)
			var (
				gp, pos     int64
				stream, typ string
				data, meta  []byte
				id          [16]byte
				at          time.Time
				got         int
			)
			_, err := pgx.ForEachRow(rows, []any{&gp, &stream, &typ, &pos, &data, &meta, &id, &at}, func() error {
				got++
				after = gp
				return nil
			})
			if err != nil {
				return err
			}
			read += got
			if got < 1000 {
				break
			}
		}
		if read != n {
			return fmt.Errorf("message db shape read %d events, want %d", read, n)
		}
		return nil
	}
	pairedBench(b, n, store, plain)
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
