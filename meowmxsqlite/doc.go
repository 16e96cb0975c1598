// Package meowmxsqlite runs meowmx on SQLite through modernc.org/sqlite
// (pure Go, no cgo).
package meowmxsqlite
