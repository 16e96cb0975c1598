// Command meowmx works with a meowmx event store from a terminal: migrate,
// append, read, tail, run workers, generate load, and the demo.
//
//	go run ./cmd/meowmx demo
//	go run ./cmd/meowmx help
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meowmx/meowmx/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.StdEnv())
	stop()
	os.Exit(code)
}
