// Package cli is the meowmx command line. Run is the whole program; main
// only wires signals and the process environment to it, so that tests run
// the same code with their own input and output.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/meowmx/meowmx"
)

// Exit codes, documented in the root command's help.
const (
	exitOK       = 0
	exitFailure  = 1 // the database or the network failed
	exitUsage    = 2 // bad flags or bad input: nothing was written
	exitConflict = 3 // optimistic concurrency: the stream moved on; reload and retry
)

// Env is what the program reads and writes besides its arguments.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Terminal is true when Stdout is a terminal: progress lines redraw.
	Terminal bool
}

// StdEnv returns the process's own environment.
func StdEnv() Env {
	return Env{
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Getenv:   os.Getenv,
		Terminal: term.IsTerminal(int(os.Stdout.Fd())),
	}
}

// usageError marks errors that are the caller's to fix.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Run runs the meowmx command line with args (without the program name)
// and returns the exit code.
func Run(ctx context.Context, args []string, env Env) int {
	app := &app{env: env}
	root := newRoot(app)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return exitOK // Ctrl-C ends --tail, sub and worker cleanly
	}
	fmt.Fprintln(env.Stderr, "meowmx: "+oneLine(err))
	var ue usageError
	switch {
	case !app.started: // cobra refused the command line: unknown command, bad or missing flags
		return exitUsage
	case errors.Is(err, meowmx.ErrConcurrency):
		return exitConflict
	case errors.As(err, &ue), errors.Is(err, meowmx.ErrInvalidArgument),
		errors.Is(err, meowmx.ErrAggregateTypeMismatch), errors.Is(err, meowmx.ErrDuplicateEvent),
		errors.Is(err, meowmx.ErrStreamNotFound), errors.Is(err, meowmx.ErrSubscriptionNotFound):
		return exitUsage
	}
	return exitFailure
}

func oneLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "meowmx: ")
	return strings.Join(strings.Fields(s), " ")
}

const rootLong = `meowmx works with a meowmx event store from a terminal.

The database comes from --db or MEOWMX_DATABASE_URL: a postgres:// URL or an
SQLite file path. With neither, the SQLite file meowmx.db in the current folder
is used, so every command works with no server.

Exit codes:
  0  success (also when Ctrl-C stops --tail, sub or worker)
  1  the database failed or could not be reached
  2  bad flags or bad input (invalid JSON, unknown stream...): nothing was written
  3  optimistic-concurrency conflict: the stream moved on; reload and retry`

func newRoot(app *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "meowmx",
		Short: "Work with a meowmx event store",
		Long:  rootLong,
		Example: `  meowmx demo
  meowmx append --type cat --id blanco --event Fed --data '{"food":"tuna"}'
  meowmx read --type cat --pretty
  meowmx --db postgres://localhost:5432/app read --json | jq .`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&app.db, "db", "", "database: postgres:// URL or SQLite file (default $MEOWMX_DATABASE_URL, else ./meowmx.db)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		app.migrateCmd(),
		app.appendCmd(),
		app.readCmd(),
		app.subCmd(),
		app.updateCatCmd(),
		app.loadCmd(),
		app.importCmd(),
		app.workerCmd(),
		app.subsCmd(),
		app.demoCmd(),
	)
	root.SetHelpCommand(&cobra.Command{Use: "help [command]", Short: "Help about any command", Hidden: false,
		RunE: func(c *cobra.Command, args []string) error {
			cmd, _, err := root.Find(args)
			if err != nil || cmd == nil {
				return usagef("unknown help topic %q", strings.Join(args, " "))
			}
			return cmd.Help()
		}})
	var mark func(c *cobra.Command)
	mark = func(c *cobra.Command) {
		if f := c.RunE; f != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				app.started = true
				return f(cmd, args)
			}
		}
		for _, sub := range c.Commands() {
			mark(sub)
		}
	}
	mark(root)
	return root
}

// app holds what the commands share.
type app struct {
	env Env
	db  string // --db
	// started is set when a command's own code starts: errors before that
	// are the command line's.
	started bool
}

func (a *app) out() io.Writer { return a.env.Stdout }

// database returns the database the commands use: --db, then
// MEOWMX_DATABASE_URL, then ./meowmx.db.
func (a *app) database() string {
	if a.db != "" {
		return a.db
	}
	if a.env.Getenv != nil {
		if u := a.env.Getenv("MEOWMX_DATABASE_URL"); u != "" {
			return u
		}
	}
	return "meowmx.db"
}
