package meowmx_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/jackc/pgx/v5"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/internal/dbtest"
	"github.com/meowmx/meowmx/meowmxpgx"
)

// exampleStore opens a migrated store for the examples that need a
// database, and a function that drops it. The examples use it alone, so
// that they can move to another backend (SQLite) by changing only this
// function.
//
// PostgreSQL: MEOWMX_TEST_DATABASE_URL, else localhost:5432, in a schema of
// its own.
func exampleStore() (*meowmx.Store[pgx.Tx], func()) {
	ctx := context.Background()
	pool, err := dbtest.NewPool(ctx, 4)
	if err != nil {
		panic(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "meowmx_example_" + hex.EncodeToString(b[:])
	driver, err := meowmxpgx.New(pool, &meowmxpgx.Config{Schema: schema})
	if err != nil {
		panic(err)
	}
	store, err := meowmx.NewStore(driver, nil)
	if err != nil {
		panic(err)
	}
	if _, err := store.Migrate(ctx, nil); err != nil {
		panic(err)
	}
	return store, func() {
		_, _ = pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		pool.Close()
	}
}
