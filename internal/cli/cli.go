// Package cli implements the cutover command line. Every command except
// serve, validate, preflight, diff, demo and version talks to the daemon
// through the control API's typed client (package api/client); none
// imports the data plane.
//
// Main takes its whole world as parameters (arguments, environment, standard
// streams) so that tests run it in-process; the package holds no mutable
// state and Main is safe to call concurrently.
//
// The commands are a github.com/spf13/cobra tree, built anew for every
// invocation, which also gives shell completion (cutover completion SHELL).
// Flags may appear anywhere among a command's arguments; the spellings of
// Go's flag package, which the CLI was first written with (-json,
// -api URL, --c FILE), keep working: they are rewritten into pflag's before
// cobra parses (see longForm).
//
// Exit codes: 0 success (for deploy --wait: promoted), 1 error, 2 usage,
// 3 a followed deployment was rolled back, aborted or failed.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/api/client"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/preflight"
)

// The exit codes of cutover.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitRollback = 3
)

// DefaultAPI is the daemon's API address when neither --api, CUTOVER_API
// nor a config file's api.listen gives one.
const DefaultAPI = "http://127.0.0.1:7070"

// DefaultConfig is the config file serve and validate read without -c, and
// where the other commands look for the daemon's address and token when it
// exists.
const DefaultConfig = "cutover.yaml"

// Commands are the subcommands implemented outside this package, so that
// the CLI does not import the daemon or the demo. A nil field makes its
// command fail with a message.
type Commands struct {
	// Serve runs the daemon in the foreground until ctx is done and
	// returns the exit code.
	Serve func(ctx context.Context, o ServeOptions, stdout, stderr io.Writer) int
	// Demo runs the self-contained showcase; args are those after "demo".
	Demo func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// DemoApp runs the demo's web application (hidden: the demo starts it
	// as its instances, through this same binary).
	DemoApp func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// Preflight builds the release safety checker of a service of cfg
	// (cutover preflight, cutover diff), which needs the runtime drivers.
	Preflight func(cfg *config.Config, service string) (*preflight.Checker, error)
}

// ServeOptions are serve's flags.
type ServeOptions struct {
	// Config is the configuration file (-c).
	Config string
	// AcceptEmptyStore is --accept-empty-store: start over a state store
	// that is empty, or that names no pool while instances run.
	AcceptEmptyStore bool
	// StopInstancesOnExit is --stop-instances-on-exit: drain and stop
	// every pool when the daemon shuts down, instead of leaving the
	// instances running for the next daemon to adopt.
	StopInstancesOnExit bool
}

// Main runs cutover with args (without the program name), reading the
// environment of the process, and returns the exit code. serve and demo are
// unavailable; the binary uses MainWith.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return MainWith(ctx, args, os.Getenv, stdin, stdout, stderr, Commands{})
}

// MainWith runs cutover with args (without the program name) and returns
// the exit code. getenv supplies CUTOVER_API, CUTOVER_TOKEN and TZ; cmds
// supplies serve and demo. Nothing is read from or written to the process
// beyond the given streams, except files named on the command line, and
// cobra's own settings when a shell asks for completions (cutover
// __complete reads CUTOVER_ACTIVE_HELP, CUTOVER_COMPLETION_DESCRIPTIONS,
// their COBRA_ forms and BASH_COMP_DEBUG_FILE from the process).
func MainWith(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, cmds Commands) int {
	a := &app{ctx: ctx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, cmds: cmds, loc: location(getenv)}
	return a.run(args)
}

// app is one invocation of the CLI. Its command tree is built per
// invocation (tree), so that no flag value outlives it.
type app struct {
	ctx            context.Context
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	cmds           Commands
	loc            *time.Location
	api            string           // --api, set by flag parsing; "" = environment, config or default
	conn           *conn            // where the daemon is, once connection resolved it
	heartbeat      time.Duration    // deploy --wait's heartbeat in line output; 0 = defaultHeartbeat (tests set it)
	opts           opts             // the flags of the command that runs
	current        *cobra.Command   // the command that runs, for its usage line
	visible        []*cobra.Command // the commands help lists, in its order
	code           int              // the exit code of the command that ran
}

func location(getenv func(string) string) *time.Location {
	if tz := getenv("TZ"); tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			return loc
		}
	}
	return time.Local
}

// run parses args with a new command tree and runs the command they name.
func (a *app) run(args []string) int {
	return a.execute(a.tree(), args)
}

// execute runs the command of root's tree that args name and returns its
// exit code. Every error cobra returns is a usage error: commands report
// their own failures through a.code.
func (a *app) execute(root *cobra.Command, args []string) int {
	args, word := longForm(root, args)
	root.SetArgs(args) // not nil, which would make cobra read os.Args
	cmd, err := root.ExecuteContextC(a.ctx)
	if err != nil {
		if cmd == nil || cmd == root {
			return a.usageError(nil, rootError(root, err, word, args))
		}
		return a.usageError(cmd, flagError(err))
	}
	return a.code
}

// callCtx bounds one request-response call to the daemon.
func (a *app) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(a.ctx, 60*time.Second)
}

// fail reports err on stderr as "cutover: ..." and returns ExitError.
func (a *app) fail(err error) int {
	var unreachable *client.UnreachableError
	var apiErr *client.Error
	switch {
	case errors.As(err, &unreachable):
		fmt.Fprintf(a.stderr, "cutover: cannot reach the cutover daemon at %s (%s): %v\n",
			unreachable.URL, a.connection().unreachableHint(), unreachable.Err)
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized && a.connection().token == "":
		fmt.Fprintf(a.stderr, "cutover: %s (%s)\n", apiErr.Message, a.connection().tokenHint())
	case errors.Is(err, context.Canceled) && a.ctx.Err() != nil:
		fmt.Fprintln(a.stderr, "cutover: interrupted")
	case errors.As(err, &apiErr) && saysItsContext(err.Error(), apiErr.Message):
		// The daemon's controller messages already name the operation
		// and service ("pause web: no deployment in progress"); the CLI's
		// own prefix would say it twice.
		fmt.Fprintf(a.stderr, "cutover: %s\n", apiErr.Message)
	default:
		fmt.Fprintf(a.stderr, "cutover: %v\n", err)
	}
	return ExitError
}

// saysItsContext reports whether full is msg behind a "op service: "
// prefix that msg itself already starts with.
func saysItsContext(full, msg string) bool {
	prefix, ok := strings.CutSuffix(full, msg)
	return ok && prefix != "" && strings.HasPrefix(msg, prefix)
}

// usageError prints msg and the command's usage line on stderr and
// returns ExitUsage; a nil cmd stands for cutover itself.
func (a *app) usageError(cmd *cobra.Command, msg string) int {
	fmt.Fprintf(a.stderr, "cutover: %s\n", msg)
	if cmd != nil && cmd.HasParent() {
		fmt.Fprintf(a.stderr, "usage: %s (see cutover help %s)\n", cmd.UseLine(), cmd.Name())
	} else {
		fmt.Fprintln(a.stderr, "usage: cutover [--api URL] COMMAND [ARGS] (see cutover help)")
	}
	return ExitUsage
}

// about is what cutover's help says after the list of commands; the man
// page of cutover says it too.
const about = `The CLI finds the daemon via --api URL, else CUTOVER_API, else api.listen of
the config (-c FILE, or ./cutover.yaml if it exists; a wildcard host such as
0.0.0.0 means loopback), else ` + DefaultAPI + `. It sends CUTOVER_TOKEN as
bearer token, else the contents of the config's api.token_file when
readable. Flags may follow the arguments.
Run "cutover help COMMAND" for a command's flags.

exit codes: 0 ok (deploy --wait: promoted), 1 error, 2 usage,
            3 deploy --wait: rolled back, aborted or failed
`

// tagline is cutover's one-line description.
const tagline = "cutover makes blue/green releases of HTTP services safe."

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, tagline+"\n\nusage: cutover [--api URL] COMMAND [ARGS]\n\ncommands:\n")
	for _, c := range a.visible {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name(), c.Short)
	}
	fmt.Fprint(w, "\n"+about)
}
