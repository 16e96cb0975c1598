package meowmxsqlite

import (
	"database/sql/driver"
	"fmt"

	"modernc.org/sqlite"

	"github.com/meowmx/meowmx/meowmxtype"
)

// partitionFunc is meowmxtype.PartitionOf in SQL: meowmx_partition(id, n)
// is the partition, of n, of the stream with aggregate id id. It is
// registered with the "sqlite" database/sql driver, for every connection
// it opens (New's pools included), when this package is loaded.
const partitionFunc = "meowmx_partition"

func init() {
	sqlite.MustRegisterDeterministicScalarFunction(partitionFunc, 2, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		var id string
		switch v := args[0].(type) {
		case string:
			id = v
		case []byte:
			id = string(v)
		default:
			return nil, fmt.Errorf("%s: aggregate id of type %T", partitionFunc, args[0])
		}
		n, ok := args[1].(int64)
		if !ok {
			return nil, fmt.Errorf("%s: partition count of type %T", partitionFunc, args[1])
		}
		return int64(meowmxtype.PartitionOf(id, int(n))), nil
	})
}
