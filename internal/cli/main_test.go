package cli_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/meowmx/meowmx/internal/dbtest"
)

// binary is the meowmx command, built once by TestMain.
var binary string //nolint:gochecknoglobals // built once per test binary

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meowmx-cli-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "meowmx")
	out, err := exec.Command("go", "build", "-race", "-o", binary, "../../cmd/meowmx").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(dbtest.ClosingPool(m), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}
