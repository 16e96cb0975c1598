package meowmxsqlite

// FileOf returns the database file that Open opened.
func FileOf(d *Driver) string { return d.file }
