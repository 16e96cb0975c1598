package meowmxsqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache holds statements prepared on one pool, so that SQLite parses
// each statement once per connection instead of on every call: parsing
// is otherwise a large share of the CPU time of a single-event append
// (docs/BENCHMARKS.md, SQLite).
// database/sql prepares a cached statement again on a connection that has
// not seen it.
type stmtCache struct {
	db *sql.DB
	m  sync.Map // SQL -> *sql.Stmt
}

// get returns query prepared on the cache's pool. It needs a connection of
// the pool the first time: never call it while holding the single write
// connection in a transaction.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := c.m.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(query, s); loaded {
		_ = s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// close closes the cached statements.
func (c *stmtCache) close() error {
	var errs []error
	c.m.Range(func(k, s any) bool {
		errs = append(errs, s.(*sql.Stmt).Close())
		c.m.Delete(k)
		return true
	})
	return errors.Join(errs...)
}

// txStmts runs statements in a transaction, from statements prepared
// beforehand when there are (a transaction of the driver's own), else
// parsed on each call (the caller's transaction, which may come from
// another pool).
type txStmts struct {
	tx       *sql.Tx
	prepared map[string]*sql.Stmt
}

func (t txStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.prepared[query]; s != nil {
		return t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t txStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.prepared[query]; s != nil {
		return t.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// prepare returns the queries prepared on c's pool, by SQL.
func (c *stmtCache) prepare(ctx context.Context, queries ...string) (map[string]*sql.Stmt, error) {
	out := make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		s, err := c.get(ctx, q)
		if err != nil {
			return nil, err
		}
		out[q] = s
	}
	return out, nil
}

func (t txStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.prepared[query]; s != nil {
		return t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}
