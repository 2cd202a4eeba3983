package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one subcommand.
type command struct {
	name    string
	args    string // usage after the name
	summary string
	// flags declares the command's flags on fs; nil for none.
	flags func(fs *flag.FlagSet, o *opts)
	// nargs checks the number of positional arguments.
	minArgs, maxArgs int
	do               func(a *app, o *opts, pos []string) int
	// raw commands get their arguments unparsed (demo).
	raw func(a *app, args []string) int
	// hidden commands are left out of help (demo-app, which the demo runs
	// as its instances).
	hidden bool
}

// opts holds every flag any command declares; each command binds only its own.
type opts struct {
	json     bool
	wait     bool
	strategy string
	limit    int
	color    string
	follow   bool
	config   string
	// acceptEmptyStore is serve's --accept-empty-store.
	acceptEmptyStore bool
}

func commandList() []*command {
	return []*command{
		{name: "serve", args: "[-c FILE] [--accept-empty-store]", summary: "run the daemon in the foreground (router, controller, API)",
			do: (*app).serve, flags: func(fs *flag.FlagSet, o *opts) {
				configFlag(fs, o)
				fs.BoolVar(&o.acceptEmptyStore, "accept-empty-store", false,
					"start although the state store is empty (0 bytes) or names no pool while instances run: take a single running pool as live")
			}},
		{name: "deploy", args: "SERVICE VERSION [--wait] [--strategy S] [--json]", summary: "start a deployment; --wait follows it to the end",
			minArgs: 2, maxArgs: 2, do: (*app).deploy, flags: func(fs *flag.FlagSet, o *opts) {
				fs.BoolVar(&o.wait, "wait", false, "follow the deployment to its end; exit 0 promoted, 3 rolled back or aborted")
				fs.StringVar(&o.strategy, "strategy", "", "strategy instead of the configured steps: all-at-once, canary10-5m or linear10-1m")
				jsonFlag(fs, o)
			}},
		{name: "status", args: "[SERVICE] [--json]", summary: "live colour and version, candidate, weights, phase",
			maxArgs: 1, flags: jsonFlag, do: (*app).status},
		actionCommand("promote", "skip the remaining steps and gates: candidate to 100%"),
		actionCommand("rollback", "all traffic back to the previous pool now"),
		actionCommand("pause", "hold a deployment at its current step"),
		actionCommand("resume", "continue a paused deployment"),
		actionCommand("abort", "abort a deployment: traffic back to the live pool"),
		{name: "history", args: "SERVICE [--limit N] [--json]", summary: "past deployments with their decisions",
			minArgs: 1, maxArgs: 1, do: (*app).history, flags: func(fs *flag.FlagSet, o *opts) {
				fs.IntVar(&o.limit, "limit", 20, "show at most N deployments (0: all)")
				jsonFlag(fs, o)
			}},
		{name: "logs", args: "SERVICE [--color blue|green] [-f]", summary: "instance output; -f follows it",
			minArgs: 1, maxArgs: 1, do: (*app).logs, flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.color, "color", "", "only the instances of this colour")
				fs.BoolVar(&o.follow, "f", false, "follow: keep printing new output")
				fs.BoolVar(&o.follow, "follow", false, "same as -f")
			}},
		{name: "register", args: "SERVICE VERSION ADDR", summary: "add a static instance (host:port) to a version's pool",
			minArgs: 3, maxArgs: 3, do: (*app).register},
		{name: "deregister", args: "SERVICE VERSION ADDR", summary: "remove a static instance",
			minArgs: 3, maxArgs: 3, do: (*app).deregister},
		{name: "validate", args: "[-c FILE] [--json]", summary: "check a config: every problem with file:line",
			flags: func(fs *flag.FlagSet, o *opts) { configFlag(fs, o); jsonFlag(fs, o) }, do: (*app).validate},
		{name: "reload", args: "", summary: "make the daemon re-read its config (a bad one is refused)", do: (*app).reload},
		{name: "demo", args: "[--keep] [--rps N]", summary: "the self-contained showcase", raw: (*app).demo},
		{name: "demo-app", args: "[--listen ADDR] [--version V] [--faults FILE]", summary: "the demo's web app", raw: (*app).demoApp, hidden: true},
		{name: "version", args: "", summary: "print cutover's version", do: (*app).version},
		{name: "help", args: "[COMMAND]", summary: "show help", maxArgs: 1, do: (*app).help},
	}
}

func actionCommand(verb, summary string) *command {
	return &command{name: verb, args: "SERVICE [--json]", summary: summary, minArgs: 1, maxArgs: 1,
		flags: jsonFlag, do: func(a *app, o *opts, pos []string) int { return a.action(verb, o, pos[0]) }}
}

func jsonFlag(fs *flag.FlagSet, o *opts) { fs.BoolVar(&o.json, "json", false, "print JSON") }

func configFlag(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.config, "c", DefaultConfig, "config file")
	fs.StringVar(&o.config, "config", DefaultConfig, "same as -c")
}

func findCommand(name string) *command {
	for _, c := range commandList() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run parses the command's flags (anywhere among its arguments) and runs it.
func (c *command) run(a *app, args []string) int {
	if c.raw != nil {
		return c.raw(a, args)
	}
	var o opts
	fs := flag.NewFlagSet("cutover "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("api", "API base URL (default $CUTOVER_API or "+DefaultAPI+")", func(v string) error {
		a.api = v
		return nil
	})
	if c.flags != nil {
		c.flags(fs, &o)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(a.stdout, fs)
		return ExitOK
	}
	if err != nil {
		return a.usageError(c, err.Error())
	}
	if len(pos) < c.minArgs || len(pos) > c.maxArgs {
		msg := fmt.Sprintf("%s takes %s", c.name, argCount(c.minArgs, c.maxArgs))
		if len(pos) > c.maxArgs {
			msg += fmt.Sprintf("; unexpected %q", pos[c.maxArgs])
		}
		return a.usageError(c, msg)
	}
	return c.do(a, &o, pos)
}

func argCount(lo, hi int) string {
	switch {
	case lo == hi && lo == 0:
		return "no arguments"
	case lo == hi && lo == 1:
		return "1 argument"
	case lo == hi:
		return fmt.Sprintf("%d arguments", lo)
	}
	return fmt.Sprintf("%d to %d arguments", lo, hi)
}

func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: cutover %s %s\n\n%s\n\nflags:\n", c.name, c.args, c.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parseInterspersed parses flags that may appear before, between or after
// positional arguments, and returns the positional ones in order.
// Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (a *app) help(o *opts, pos []string) int {
	if len(pos) == 0 {
		a.usage(a.stdout)
		return ExitOK
	}
	c := findCommand(pos[0])
	if c == nil {
		return a.usageError(nil, fmt.Sprintf("unknown command %q", pos[0]))
	}
	return c.run(a, []string{"-h"})
}

func (a *app) serve(o *opts, pos []string) int {
	if a.cmds.Serve == nil {
		fmt.Fprintln(a.stderr, "cutover: serve is not available in this build")
		return ExitError
	}
	return a.cmds.Serve(a.ctx, ServeOptions{Config: o.config, AcceptEmptyStore: o.acceptEmptyStore}, a.stdout, a.stderr)
}

func (a *app) demo(args []string) int {
	if a.cmds.Demo == nil {
		fmt.Fprintln(a.stderr, "cutover: demo is not available in this build")
		return ExitError
	}
	return a.cmds.Demo(a.ctx, args, a.stdout, a.stderr)
}

func (a *app) demoApp(args []string) int {
	if a.cmds.DemoApp == nil {
		fmt.Fprintln(a.stderr, "cutover: demo-app is not available in this build")
		return ExitError
	}
	return a.cmds.DemoApp(a.ctx, args, a.stdout, a.stderr)
}

// joinNonEmpty joins the non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
