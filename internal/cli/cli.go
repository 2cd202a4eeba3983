// Package cli implements the cutover command line. Every command except
// serve, validate, demo and version talks to the daemon through the control
// API's typed client (package api/client); none imports the data plane.
//
// Main takes its whole world as parameters (arguments, environment, standard
// streams) so that tests run it in-process; the package holds no mutable
// state and Main is safe to call concurrently.
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

	"github.com/cutover/cutover/internal/api/client"
)

// The exit codes of cutover.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitUsage    = 2
	ExitRollback = 3
)

// DefaultAPI is the daemon's API address when neither --api nor CUTOVER_API is set.
const DefaultAPI = "http://127.0.0.1:7070"

// DefaultConfig is the config file serve and validate read without -c.
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
}

// ServeOptions are serve's flags.
type ServeOptions struct {
	// Config is the configuration file (-c).
	Config string
	// AcceptEmptyStore is --accept-empty-store: start over a state store
	// that is empty, or that names no pool while instances run.
	AcceptEmptyStore bool
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
// beyond the given streams, except files named on the command line.
func MainWith(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer, cmds Commands) int {
	a := &app{ctx: ctx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, cmds: cmds, loc: location(getenv)}
	return a.run(args)
}

// app is one invocation of the CLI.
type app struct {
	ctx            context.Context
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	cmds           Commands
	loc            *time.Location
	api            string // --api, set by flag parsing; "" = environment or default
}

func location(getenv func(string) string) *time.Location {
	if tz := getenv("TZ"); tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			return loc
		}
	}
	return time.Local
}

func (a *app) run(args []string) int {
	// Global flags may precede the command: cutover --api URL status.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch arg := args[0]; {
		case arg == "-h" || arg == "--help" || arg == "-help":
			a.usage(a.stdout)
			return ExitOK
		case arg == "--api" || arg == "-api":
			if len(args) < 2 {
				return a.usageError(nil, "flag needs an argument: --api")
			}
			a.api, args = args[1], args[2:]
		case strings.HasPrefix(arg, "--api=") || strings.HasPrefix(arg, "-api="):
			a.api, args = arg[strings.IndexByte(arg, '=')+1:], args[1:]
		default:
			return a.usageError(nil, fmt.Sprintf("unknown flag %s before the command", arg))
		}
	}
	if len(args) == 0 {
		a.usage(a.stderr)
		return ExitUsage
	}
	cmd := findCommand(args[0])
	if cmd == nil {
		return a.usageError(nil, fmt.Sprintf("unknown command %q (see cutover help)", args[0]))
	}
	return cmd.run(a, args[1:])
}

// client returns the API client from --api, CUTOVER_API or the default,
// with CUTOVER_TOKEN as bearer token.
func (a *app) client() *client.Client {
	addr := a.api
	if addr == "" {
		addr = a.getenv("CUTOVER_API")
	}
	if addr == "" {
		addr = DefaultAPI
	}
	// No overall timeout: streams (events, logs) last as long as ctx.
	return client.New(addr, a.getenv("CUTOVER_TOKEN"), &http.Client{})
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
		fmt.Fprintf(a.stderr, "cutover: cannot reach the cutover daemon at %s (is `cutover serve` running? set --api or CUTOVER_API to point elsewhere): %v\n",
			unreachable.URL, unreachable.Err)
	case errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized && a.getenv("CUTOVER_TOKEN") == "":
		fmt.Fprintf(a.stderr, "cutover: %s (the daemon requires a token: set CUTOVER_TOKEN)\n", apiErr.Message)
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

// usageError prints msg and the command's usage line on stderr and returns ExitUsage.
func (a *app) usageError(cmd *command, msg string) int {
	fmt.Fprintf(a.stderr, "cutover: %s\n", msg)
	if cmd != nil {
		fmt.Fprintf(a.stderr, "usage: cutover %s %s\n", cmd.name, cmd.args)
	} else {
		fmt.Fprintln(a.stderr, "usage: cutover [--api URL] COMMAND [ARGS] (see cutover help)")
	}
	return ExitUsage
}

func (a *app) usage(w io.Writer) {
	fmt.Fprint(w, "cutover makes blue/green releases of HTTP services safe.\n\nusage: cutover [--api URL] COMMAND [ARGS]\n\ncommands:\n")
	for _, c := range commandList() {
		if c.hidden {
			continue
		}
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
The CLI finds the daemon via --api URL or CUTOVER_API (default `+DefaultAPI+`)
and sends CUTOVER_TOKEN as bearer token. Flags may follow the arguments.
Run "cutover help COMMAND" for a command's flags.

exit codes: 0 ok (deploy --wait: promoted), 1 error, 2 usage,
            3 deploy --wait: rolled back, aborted or failed
`)
}
