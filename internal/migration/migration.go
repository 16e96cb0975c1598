// Package migration reads the numbered SQL migrations that each driver
// embeds (migration/NNN_name.up.sql).
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one numbered migration.
type Migration struct {
	Version int
	Name    string // file name without ".up.sql": "001_create_tables"
	SQL     string
}

// Load returns the migrations in dir of fsys, in version order. File names
// are NNN_name.up.sql; it fails on a name without a number and on two files
// with one version.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	paths, err := fs.Glob(fsys, dir+"/*.up.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, p := range paths {
		base := path.Base(p)
		n, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version: %w", p, err)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: n, Name: strings.TrimSuffix(base, ".up.sql"), SQL: string(b)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s have one version", out[i-1].Name, out[i].Name)
		}
	}
	return out, nil
}
