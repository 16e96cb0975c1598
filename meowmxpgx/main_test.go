package meowmxpgx_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/meowmx/meowmx/internal/dbtest"
)

func TestMain(m *testing.M) {
	if schema := os.Getenv(childEnv); schema != "" {
		os.Exit(runChild(schema))
	}
	goleak.VerifyTestMain(dbtest.ClosingPool(m))
}
