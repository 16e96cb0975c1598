package meowmxsqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meowmx/meowmx/internal/migration"
	"github.com/meowmx/meowmx/meowmxdriver"
)

//go:embed migration/*.up.sql
var migrationFS embed.FS

// Migrate implements meowmxdriver.Driver. It applies the missing
// migrations in one BEGIN IMMEDIATE transaction, so that concurrent runs,
// in this process or others, wait for each other. Aggregate ids are TEXT on
// SQLite: any other AggregateIDType is refused with an error matching
// meowmxdriver.ErrInvalidInput. A file that the Python meowmx client
// created is adopted: the Go client's columns are added to its tables in
// that transaction, or, when a table lacks one of the Python client's own
// columns, Migrate refuses with an error matching
// meowmxdriver.ErrInvalidInput and the file is left as it was.
func (d *Driver) Migrate(ctx context.Context, p *meowmxdriver.MigrateParams) (*meowmxdriver.MigrateResult, error) {
	if p == nil {
		p = &meowmxdriver.MigrateParams{}
	}
	if t := strings.TrimSpace(p.AggregateIDType); t != "" && !strings.EqualFold(t, "TEXT") {
		return nil, fmt.Errorf("%w: aggregate id type %q: SQLite stores aggregate ids as TEXT", meowmxdriver.ErrInvalidInput, t)
	}
	all, err := migration.Load(migrationFS, "migration")
	if err != nil {
		return nil, fmt.Errorf("meowmxsqlite: %w", err)
	}
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("meowmxsqlite: migrate: %w", err)
	}
	defer conn.Close()
	res, err := migrate(ctx, conn, all)
	if err != nil {
		return nil, fmt.Errorf("meowmxsqlite: migrate: %w", err)
	}
	return res, nil
}

func migrate(ctx context.Context, conn *sql.Conn, all []migration.Migration) (res *meowmxdriver.MigrateResult, err error) {
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			_, err = conn.ExecContext(ctx, `COMMIT`)
		}
		if err != nil {
			if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); rbErr != nil {
				// Do not give the pool a connection left in a transaction.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS meowmx_migrations (
		version     INTEGER NOT NULL PRIMARY KEY,
		name        TEXT    NOT NULL,
		applied_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	) STRICT`); err != nil {
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, `SELECT version FROM meowmx_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	var applied []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		applied = append(applied, v)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	if err := adopt(ctx, conn); err != nil {
		return nil, err
	}
	res = &meowmxdriver.MigrateResult{}
	for _, m := range all {
		if slices.Contains(applied, m.Version) {
			res.Version = m.Version
			continue
		}
		if _, err := conn.ExecContext(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO meowmx_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
			return nil, err
		}
		res.Applied = append(res.Applied, m.Version)
		res.Version = m.Version
	}
	if err := dropDuplicateIndexes(ctx, conn); err != nil {
		return nil, err
	}
	return res, nil
}
