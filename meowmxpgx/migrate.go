package meowmxpgx

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"github.com/meowmx/meowmx/internal/migration"
	"github.com/meowmx/meowmx/meowmxdriver"
)

//go:embed migration/*.up.sql
var migrationFS embed.FS

var idTypePattern = regexp.MustCompile(`^(?i:(TEXT|UUID)|CHAR\(([1-9][0-9]{0,7})\))$`)

// normalizeIDType validates an aggregate id type: TEXT, UUID or CHAR(n).
func normalizeIDType(t string) (string, error) {
	if t == "" {
		return "TEXT", nil
	}
	t = strings.TrimSpace(t)
	if !idTypePattern.MatchString(t) {
		return "", fmt.Errorf("%w: aggregate id type %q: want TEXT, UUID or CHAR(n)", meowmxdriver.ErrInvalidInput, t)
	}
	return strings.ToUpper(t), nil
}

// sameIDType tells whether a catalog type (format_type) is the requested
// TEXT, UUID or CHAR(n).
func sameIDType(catalog, requested string) bool {
	c := strings.ToLower(catalog)
	switch r := strings.ToLower(requested); {
	case r == "text", r == "uuid":
		return c == r
	default: // char(n)
		return c == "character"+strings.TrimPrefix(r, "char")
	}
}

// Migrate implements meowmxdriver.Driver. It creates the schema and applies
// the missing migrations in one transaction, holding an advisory lock
// keyed on the schema so that concurrent runs wait for each other.
func (d *Driver) Migrate(ctx context.Context, p *meowmxdriver.MigrateParams) (*meowmxdriver.MigrateResult, error) {
	if p == nil {
		p = &meowmxdriver.MigrateParams{}
	}
	idType, err := normalizeIDType(p.AggregateIDType)
	if err != nil {
		return nil, err
	}
	all, err := migration.Load(migrationFS, "migration")
	if err != nil {
		return nil, fmt.Errorf("meowmxpgx: %w", err)
	}
	res := &meowmxdriver.MigrateResult{}
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "meowmx.migrate."+d.schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+d.quoted); err != nil {
			switch sqlState(err) {
			case pgerrcode.ReservedName, pgerrcode.InvalidName, pgerrcode.InvalidSchemaName:
				// The server refuses the name (pg_ is reserved): the
				// caller's to fix.
				return fmt.Errorf("%w: schema %q refused by the server: %w", meowmxdriver.ErrInvalidInput, d.schema, err)
			}
			return err
		}
		// The migrations' DO blocks read the schema from here (a quoted
		// identifier), never from their body's text.
		if _, err := tx.Exec(ctx, `SELECT set_config('meowmx.schema', $1, true)`, d.quoted); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+d.quoted+`.meowmx_migrations (
			version     INTEGER     PRIMARY KEY,
			name        TEXT        NOT NULL,
			applied_at  TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var existing *string
		if err := tx.QueryRow(ctx, `SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
			WHERE a.attrelid = to_regclass($1) AND a.attname = 'id' AND NOT a.attisdropped`,
			d.quoted+".es_aggregates").Scan(&existing); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if existing != nil && p.AggregateIDType != "" && !sameIDType(*existing, idType) {
			return fmt.Errorf("%w: the tables exist with aggregate id type %s; it cannot be changed to %s",
				meowmxdriver.ErrInvalidInput, *existing, idType)
		}
		rows, _ := tx.Query(ctx, `SELECT version FROM `+d.quoted+`.meowmx_migrations ORDER BY version`)
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		if existing != nil {
			// Adopted tables (the Python client's, or created with
			// another type): new tables get the same id type.
			idType = *existing
		}
		r := strings.NewReplacer("{{schema}}", d.quoted, "{{id_type}}", idType)
		for _, m := range all {
			if slices.Contains(applied, m.Version) {
				res.Version = m.Version
				continue
			}
			if _, err := tx.Exec(ctx, r.Replace(m.SQL)); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+d.quoted+`.meowmx_migrations (version, name) VALUES ($1, $2)`,
				m.Version, m.Name); err != nil {
				return err
			}
			res.Applied = append(res.Applied, m.Version)
			res.Version = m.Version
		}
		return nil
	})
	d.forget()
	if err != nil {
		if errors.Is(err, meowmxdriver.ErrInvalidInput) {
			return nil, err
		}
		return nil, fmt.Errorf("meowmxpgx: migrate schema %q: %w", d.schema, err)
	}
	return res, nil
}
