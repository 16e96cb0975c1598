package meowmxpgx

// SetPerAppend makes d's EventAppendBatch send one statement per append
// (its fallback) instead of one per round of distinct streams.
func SetPerAppend(d *Driver, perAppend bool) { d.perAppend = perAppend }
