package meowmxsqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meowmx/meowmx/meowmxdriver"
)

// Adopting a file that the Python meowmx client created (its SQLAlchemy
// tables: es_aggregates, es_events, es_aggregate_snapshots and
// es_event_subscriptions, with their columns only). Migration 001 creates
// tables IF NOT EXISTS, so on such a file it would leave them without the
// columns the Go client reads and writes. adopt runs first, in the
// migration's transaction, and either adds every missing column (all
// nullable: SQLite adds no column with a non-constant default, and the
// Python client names its columns), or refuses with ErrInvalidInput,
// before anything changed, when a table lacks a column that the Python
// client has too. It runs on every Migrate, so that a file which an older
// Go client "migrated" without the columns is repaired as well.

// adoptColumns are the columns a table must have (required) and those
// adopt adds when missing.
var adoptColumns = []struct {
	table    string
	required []string
	add      [][2]string // name, definition
}{
	{"es_aggregates", []string{"id", "version", "aggregate_type"}, nil},
	{"es_events", []string{"id", "transaction_id", "aggregate_id", "version", "event_type", "json_data"},
		[][2]string{{"metadata", "TEXT"}, {"event_uuid", "BLOB"}, {"created_at", "TEXT"}}},
	{"es_aggregate_snapshots", []string{"aggregate_id", "version", "json_data"},
		[][2]string{{"aggregate_type", "TEXT"}, {"snapshot_version", "INTEGER"}, {"state_shape", "TEXT"}}},
	{"es_event_subscriptions", []string{"subscription_name", "last_transaction_id", "last_event_id"},
		[][2]string{{"aggregate_types", "TEXT"}, {"event_types", "TEXT"}}},
}

// adopt adds the Go client's columns to tables that another client
// created; it changes nothing on a file without es_events, or whose tables
// have them.
func adopt(ctx context.Context, conn *sql.Conn) error {
	var stmts []string
	for _, t := range adoptColumns {
		cols, err := tableColumns(ctx, conn, t.table)
		if err != nil {
			return err
		}
		if cols == nil {
			continue // created by 001
		}
		var missing []string
		for _, c := range t.required {
			if !slices.Contains(cols, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: table %s exists without column(s) %s: not a meowmx table; nothing was changed",
				meowmxdriver.ErrInvalidInput, t.table, strings.Join(missing, ", "))
		}
		for _, a := range t.add {
			if !slices.Contains(cols, a[0]) {
				stmts = append(stmts, "ALTER TABLE "+t.table+" ADD COLUMN "+a[0]+" "+a[1])
				if t.table == "es_events" && a[0] == "event_uuid" {
					stmts = append(stmts, "CREATE UNIQUE INDEX IF NOT EXISTS es_events_event_uuid_key ON es_events (event_uuid)")
				}
				if t.table == "es_events" && a[0] == "created_at" {
					// Events written after adoption by the Python client
					// (which names its columns) get their time; those
					// written before keep NULL: unknown.
					stmts = append(stmts, `CREATE TRIGGER IF NOT EXISTS es_events_created_at AFTER INSERT ON es_events
						WHEN NEW.created_at IS NULL
						BEGIN UPDATE es_events SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id; END`)
				}
			}
		}
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("adopt the tables: %s: %w", s, err)
		}
	}
	return nil
}

// tableColumns returns the columns of table, or nil when it does not
// exist.
func tableColumns(ctx context.Context, conn *sql.Conn, table string) ([]string, error) {
	rows, err := conn.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

// dropDuplicateIndexes drops the Go client's indexes that another index of
// the same table matches by definition (columns in order, uniqueness,
// partial or not), whatever its name: the Python client's
// idx_es_aggregate_aggregate_type makes 001's idx_es_aggregates_aggregate_type
// a second copy that every append would maintain.
func dropDuplicateIndexes(ctx context.Context, conn *sql.Conn) error {
	for _, ix := range []struct{ table, name string }{
		{"es_aggregates", "idx_es_aggregates_aggregate_type"},
	} {
		mine, err := indexDefinition(ctx, conn, ix.name)
		if err != nil || mine == "" {
			return err
		}
		rows, err := conn.QueryContext(ctx, `SELECT name FROM pragma_index_list(?) WHERE name <> ?`, ix.table, ix.name)
		if err != nil {
			return err
		}
		var others []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			others = append(others, n)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, o := range others {
			def, err := indexDefinition(ctx, conn, o)
			if err != nil {
				return err
			}
			if def == mine {
				if _, err := conn.ExecContext(ctx, `DROP INDEX `+ix.name); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// indexDefinition describes an index by what it indexes, not its name:
// its table, uniqueness, partial flag and key columns in order; "" when
// there is no such index.
func indexDefinition(ctx context.Context, conn *sql.Conn, name string) (string, error) {
	var table string
	var unique, partial int
	err := conn.QueryRowContext(ctx, `SELECT m.tbl_name, l."unique", l.partial
		FROM sqlite_master m, pragma_index_list(m.tbl_name) l
		WHERE m.type = 'index' AND m.name = ? AND l.name = m.name`, name).Scan(&table, &unique, &partial)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	rows, err := conn.QueryContext(ctx, `SELECT COALESCE(name, '?'), "desc", coll FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno`, name)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	def := fmt.Sprintf("%s unique=%d partial=%d", table, unique, partial)
	if partial != 0 {
		def += " " + name // predicates are not compared: a partial index matches none
	}
	for rows.Next() {
		var col, coll string
		var desc int
		if err := rows.Scan(&col, &desc, &coll); err != nil {
			return "", err
		}
		def += fmt.Sprintf(" %s/%d/%s", col, desc, coll)
	}
	return def, rows.Err()
}
