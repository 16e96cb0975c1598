package meowmxpgx

// SetPerAppend makes d's EventAppendBatch send one statement per append,
// the shape it falls back to when a statement of several appends fails.
func SetPerAppend(d *Driver, perAppend bool) { d.perAppend = perAppend }

// HorizonSQL is horizonSQL, for benchmarks and tests.
const HorizonSQL = horizonSQL

// RowLockApplication is rowLockApplication, for tests.
const RowLockApplication = rowLockApplication
