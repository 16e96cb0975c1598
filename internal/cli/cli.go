// Package cli is the meowmx command line. Run is the whole program; main
// only wires signals and the process environment to it, so that tests run
// the same code with their own input and output.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/term"

	"github.com/meowmx/meowmx"
)

// Exit codes, documented in the root command's help.
const (
	exitOK       = 0
	exitFailure  = 1 // the database or the network failed
	exitUsage    = 2 // bad flags or bad input: nothing of the refused command (or import batch) was written
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

// messageError gives err another message, keeping what it matches.
type messageError struct {
	msg string
	err error
}

func (e messageError) Error() string { return e.msg }
func (e messageError) Unwrap() error { return e.err }

// withMessage returns err with msg as its message: for errors whose own
// message the command says better, without repeating it.
func withMessage(err error, msg string) error { return messageError{msg: msg, err: err} }

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

// oneLine returns err's message on one line, without the "meowmx: "
// prefixes of the errors it wraps (the command adds one).
func oneLine(err error) string {
	s := strings.TrimPrefix(err.Error(), "meowmx: ")
	s = strings.ReplaceAll(s, ": meowmx: ", ": ")
	return strings.Join(strings.Fields(s), " ")
}

const rootLong = `meowmx works with a meowmx event store from a terminal.

The database comes from --db or MEOWMX_DATABASE_URL: a postgres:// (or
postgresql://) URL, a libpq key=value string ('host=db dbname=app'), or an
SQLite file: one that exists, or a new path ending in .db, .sqlite or .sqlite3
(anything else is refused, so that a mistyped URL creates no file). With
neither, the SQLite file meowmx.db in the current folder is used, so every
command works with no server. ?search_path=NAME in a URL chooses the schema.

The long-running commands (worker, read --tail, sub, load) log what they do
to stderr: ownership, standing by, outages and when they retry, sessions that
hold the commit horizon back, stalls. --log-format json for machines,
--log-level debug for more.

Exit codes:
  0  success (also when Ctrl-C stops --tail, sub or worker)
  1  the database failed or could not be reached (a worker keeps retrying
     unless --fail-fast), or a subscription was deleted while its worker ran
  2  bad flags or bad input (invalid JSON, unknown stream...): nothing was written
     (import: nothing of the refused batch; the batches before it stay written)
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
	pf := root.PersistentFlags()
	pf.StringVar(&app.db, "db", "", "database: postgres:// URL, key=value connection string, or SQLite file (default $MEOWMX_DATABASE_URL, else ./meowmx.db)")
	pf.StringVar(&app.logFormat, "log-format", logFormatText, "format of the logs on stderr of worker, read --tail, sub and load: text or json")
	pf.StringVar(&app.logLevel, "log-level", "info", "least level logged: debug, info, warn or error")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		var err error
		app.log, err = newLogger(app.env.Stderr, app.logFormat, app.logLevel)
		return err
	}
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
		app.relayCmd(),
		app.subsCmd(),
		app.demoCmd(),
		app.consoleCmd(),
	)
	root.SetHelpCommand(&cobra.Command{Use: "help [command]", Short: "Help about any command", Hidden: false,
		RunE: func(c *cobra.Command, args []string) error {
			cmd, _, err := root.Find(args)
			if err != nil || cmd == nil {
				return usagef("unknown help topic %s", short(strings.Join(args, " ")))
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
	// --log-format, --log-level, and the logger they make.
	logFormat, logLevel string
	log                 *slog.Logger
	// long is set by the long-running commands before they open the
	// database: the store then logs through log.
	long bool
	// started is set when a command's own code starts: errors before that
	// are the command line's.
	started bool
	// meterProvider receives the metrics of the stores opened (--metrics);
	// nil: the global provider, a no-op.
	meterProvider metric.MeterProvider
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
