// Package dbtest gives tests an isolated PostgreSQL schema each, so that
// they run in parallel against one server.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DatabaseURLDefault is used when MEOWMX_TEST_DATABASE_URL is not set.
const DatabaseURLDefault = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// DatabaseURL returns MEOWMX_TEST_DATABASE_URL, or DatabaseURLDefault.
func DatabaseURL() string {
	if u := os.Getenv("MEOWMX_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DatabaseURLDefault
}

var (
	poolOnce sync.Once //nolint:gochecknoglobals // one pool per test binary
	pool     *pgxpool.Pool
	poolErr  error
)

// Pool returns a pool shared by the tests of one binary. When the server
// cannot be reached, the test is skipped, unless MEOWMX_TEST_DATABASE_URL is
// set (as scripts/test does), in which case it fails.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	poolOnce.Do(func() {
		pool, poolErr = NewPool(context.Background(), 40)
	})
	if poolErr != nil {
		if os.Getenv("MEOWMX_TEST_DATABASE_URL") == "" {
			t.Skipf("PostgreSQL not reachable at %s (set MEOWMX_TEST_DATABASE_URL or run scripts/test): %v", DatabaseURL(), poolErr)
		}
		t.Fatalf("PostgreSQL not reachable at %s: %v", DatabaseURL(), poolErr)
	}
	return pool
}

// ClosingPool wraps m, for goleak.VerifyTestMain: its Run runs the tests
// and then closes the pool that Pool shares, so that the leak check that
// follows sees no goroutine of it.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(dbtest.ClosingPool(m)) }
func ClosingPool(m interface{ Run() int }) interface{ Run() int } {
	return closingPool{m}
}

type closingPool struct{ m interface{ Run() int } }

func (c closingPool) Run() int {
	code := c.m.Run()
	poolOnce.Do(func() {}) // no Pool opens one from now on
	if pool != nil {
		pool.Close()
	}
	return code
}

// NewPool opens a pool of up to maxConns connections on DatabaseURL and
// checks that it answers.
func NewPool(ctx context.Context, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(DatabaseURL())
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Schema returns the shared pool and the name of a new, empty schema that
// is dropped when the test ends.
func Schema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	p := Pool(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "meowmx_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := p.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := p.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return p, name
}
