package meowmx_test

import (
	"context"
	"database/sql"

	"github.com/meowmx/meowmx"
	"github.com/meowmx/meowmx/meowmxsqlite"
)

// exampleStore opens a migrated store on a throwaway SQLite database for
// the examples that are about something else than opening a store, and a
// function that closes it.
func exampleStore() (*meowmx.Store[*sql.Tx], func()) {
	ctx := context.Background()
	driver, err := meowmxsqlite.Open(ctx, meowmxsqlite.Memory, nil)
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
	return store, func() { _ = driver.Close() }
}
