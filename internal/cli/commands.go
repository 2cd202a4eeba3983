package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cutover/cutover/internal/deploy"
)

// opts holds every flag any command declares; each command binds only its own.
type opts struct {
	json     bool
	wait     bool
	strategy string
	// env and envFile are deploy's --env KEY=VALUE (repeated) and --env-file.
	env     []string
	envFile string
	limit   int
	color   string
	follow  bool
	config  string
	// daemonConfig is -c of the commands that talk to the daemon; a
	// field of its own, since a flag's declaration sets its variable to
	// its default and serve's -c has another.
	daemonConfig string
	// acceptEmptyStore is serve's --accept-empty-store.
	acceptEmptyStore bool
	// stopInstances is serve's --stop-instances-on-exit.
	stopInstances bool

	// allowDrift is deploy's --allow-drift.
	allowDrift bool
	// dryRun is deploy's --dry-run.
	dryRun bool
}

// tree builds the command tree of one invocation: its flags write into a,
// its output goes to a's streams. Nothing in it outlives the invocation.
func (a *app) tree() *cobra.Command {
	root := &cobra.Command{
		Use:   "cutover [--api URL] COMMAND [ARGS]",
		Short: "blue/green releases of HTTP services",
		Long:  tagline + "\n\n" + about,
		// An argument that names no command reaches root, which says so.
		Args: a.unknownCommand,
		Run: func(cmd *cobra.Command, args []string) {
			a.usage(a.stderr)
			a.code = ExitUsage
		},
		// Flags before the command are cutover's own (--api), parsed
		// there; a raw command (demo) gets only what follows its name.
		TraverseChildren:      true,
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		CompletionOptions:     cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SuggestionsMinimumDistance = 2
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.PersistentFlags().StringVar(&a.api, "api", "", "API base URL (default $CUTOVER_API, else api.listen of the config, else "+DefaultAPI+")")
	// Declared here so that it is hidden from every command's flag list,
	// as Go's flag package left it out.
	root.PersistentFlags().BoolP("help", "h", false, "show help")
	_ = root.PersistentFlags().MarkHidden("help") // the flag exists: no error
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) { a.help(a.stdout, cmd) })

	cmds := a.commands()
	help := a.helpCommand()
	root.SetHelpCommand(help)
	root.AddCommand(cmds...)
	for _, c := range append(cmds, help) {
		if !c.Hidden {
			a.visible = append(a.visible, c)
		}
	}
	return root
}

// commands are cutover's subcommands, in the order help lists them.
func (a *app) commands() []*cobra.Command {
	o := &a.opts
	serve := a.command("serve [-c FILE] [--accept-empty-store] [--stop-instances-on-exit]", "run the daemon in the foreground (router, controller, API)",
		nargs(0, 0), (*app).serve)
	configFlag(serve, o)
	serve.Flags().BoolVar(&o.acceptEmptyStore, "accept-empty-store", false,
		"start although the state store is empty (0 bytes) or names no pool while instances run: take a single running pool as live")
	serve.Flags().BoolVar(&o.stopInstances, "stop-instances-on-exit", false,
		"drain and stop every pool on shutdown (by default instances keep running and the next daemon adopts them)")

	deployCmd := a.command("deploy SERVICE VERSION [--wait] [--strategy S] [--env KEY=VALUE] [--env-file FILE] [--json]", "start a deployment; --wait follows it to the end",
		nargs(2, 2), (*app).deploy)
	deployCmd.ValidArgsFunction = a.completeService
	deployCmd.Flags().BoolVar(&o.wait, "wait", false, "follow the deployment to its end; exit 0 promoted, 3 rolled back or aborted")
	deployCmd.Flags().StringVar(&o.strategy, "strategy", "", "strategy instead of the configured steps: all-at-once, canary10-5m or linear10-1m")
	_ = deployCmd.RegisterFlagCompletionFunc("strategy", // the flag exists: no error
		cobra.FixedCompletions([]string{deploy.StrategyAllAtOnce, deploy.StrategyCanary10, deploy.StrategyLinear10}, cobra.ShellCompDirectiveNoFileComp))
	deployCmd.Flags().StringArrayVar(&o.env, "env", nil, "KEY=VALUE for this release's instances, over the configured env (repeat it); history keeps only a hash of the value")
	deployCmd.Flags().BoolVar(&o.allowDrift, "allow-drift", false, "deploy even when the drift check finds blue and green differ (the preflight's drift findings; runtime asg: subnets, instance type, security groups, IAM profile, health checks, tags)")
	deployCmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the AWS calls the deployment would make (traffic.alb, traffic.route53), from the config file; change nothing")
	deployCmd.Flags().StringVar(&o.envFile, "env-file", "", "a file of KEY=VALUE lines for this release's instances (--env wins over it)")
	jsonFlag(deployCmd, o)
	daemonConfigFlag(deployCmd, o)

	status := a.command("status [SERVICE] [--json]", "live colour and version, candidate, weights, phase", nargs(0, 1), (*app).status)
	status.ValidArgsFunction = a.completeService
	jsonFlag(status, o)
	daemonConfigFlag(status, o)

	history := a.command("history SERVICE [--limit N] [--json]", "past deployments with their decisions", nargs(1, 1), (*app).history)
	history.ValidArgsFunction = a.completeService
	history.Flags().IntVar(&o.limit, "limit", 20, "show at most N deployments (0: all)")
	jsonFlag(history, o)
	daemonConfigFlag(history, o)

	logs := a.command("logs SERVICE [--color blue|green] [-f]", "instance output; -f follows it", nargs(1, 1), (*app).logs)
	logs.ValidArgsFunction = a.completeService
	logs.Flags().StringVar(&o.color, "color", "", "only the instances of this colour")
	_ = logs.RegisterFlagCompletionFunc("color", // the flag exists: no error
		cobra.FixedCompletions([]string{"blue", "green"}, cobra.ShellCompDirectiveNoFileComp))
	logs.Flags().BoolVarP(&o.follow, "follow", "f", false, "follow: keep printing new output")
	daemonConfigFlag(logs, o)

	register := a.command("register SERVICE VERSION ADDR", "add a static instance (host:port) to a version's pool", nargs(3, 3), (*app).register)
	register.ValidArgsFunction = a.completeService
	daemonConfigFlag(register, o)
	deregister := a.command("deregister SERVICE VERSION ADDR", "remove a static instance", nargs(3, 3), (*app).deregister)
	deregister.ValidArgsFunction = a.completeService
	daemonConfigFlag(deregister, o)

	validate := a.command("validate [-c FILE] [--json]", "check a config: every problem with file:line", nargs(0, 0), (*app).validate)
	configFlag(validate, o)
	jsonFlag(validate, o)

	reload := a.command("reload", "make the daemon re-read its config (a bad one is refused)", nargs(0, 0), (*app).reload)
	daemonConfigFlag(reload, o)

	return []*cobra.Command{
		serve, deployCmd, status,
		a.actionCommand("promote", "skip the remaining steps and gates: candidate to 100%"),
		a.actionCommand("rollback", "all traffic back to the previous pool now"),
		a.actionCommand("pause", "hold a deployment at its current step"),
		a.actionCommand("resume", "continue a paused deployment"),
		a.actionCommand("abort", "abort a deployment: traffic back to the live pool"),
		a.downUpCommand("down", "take a service out of service: drain and stop both colours, keep its state", downHelp, (*app).down),
		a.downUpCommand("up", "bring a service that is down back: start its live release, health-gated", upHelp, (*app).up),
		history, logs, register, deregister, validate,
		a.preflightCommand(o), a.diffCommand(o),
		reload, a.upgradeCommand(o),
		a.rawCommand("demo [--keep] [--rps N]", "the self-contained showcase", (*app).demo),
		hidden(a.rawCommand("demo-app [--listen ADDR] [--version V] [--faults FILE]", "the demo's web app", (*app).demoApp)),
		a.completionCommand(),
		a.manCommand(),
		a.command("version", "print cutover's version", nargs(0, 0), (*app).version),
	}
}

// command returns a subcommand that runs do with the parsed flags and the
// positional arguments, and keeps its exit code.
func (a *app) command(use, summary string, args cobra.PositionalArgs, do func(a *app, o *opts, pos []string) int) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: summary, Args: args, DisableFlagsInUseLine: true,
		ValidArgsFunction: cobra.NoFileCompletions,
		Run: func(cmd *cobra.Command, pos []string) {
			a.current = cmd
			a.code = do(a, &a.opts, pos)
		},
	}
}

// rawCommand returns a subcommand that gets its arguments unparsed (the
// demo parses its own), "-h" included.
func (a *app) rawCommand(use, summary string, run func(a *app, args []string) int) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: summary, DisableFlagParsing: true, DisableFlagsInUseLine: true,
		Run: func(cmd *cobra.Command, args []string) { a.code = run(a, args) },
	}
}

// hidden leaves c out of help and completion (demo-app, which the demo
// runs as its instances).
func hidden(c *cobra.Command) *cobra.Command {
	c.Hidden = true
	return c
}

func (a *app) actionCommand(verb, summary string) *cobra.Command {
	c := a.command(verb+" SERVICE [--json]", summary, nargs(1, 1),
		func(a *app, o *opts, pos []string) int { return a.action(verb, o, pos[0]) })
	c.ValidArgsFunction = a.completeService
	jsonFlag(c, &a.opts)
	daemonConfigFlag(c, &a.opts)
	return c
}

// downUpCommand is "cutover down SERVICE" or "cutover up SERVICE".
func (a *app) downUpCommand(verb, summary, long string, do func(a *app, o *opts, pos []string) int) *cobra.Command {
	c := a.command(verb+" SERVICE [--json]", summary, nargs(1, 1), do)
	c.Long = long
	c.ValidArgsFunction = a.completeService
	jsonFlag(c, &a.opts)
	daemonConfigFlag(c, &a.opts)
	return c
}

func jsonFlag(c *cobra.Command, o *opts) { c.Flags().BoolVar(&o.json, "json", false, "print JSON") }

func configFlag(c *cobra.Command, o *opts) {
	c.Flags().StringVarP(&o.config, "config", "c", DefaultConfig, "config file")
	_ = c.MarkFlagFilename("config", "yaml", "yml") // the flag exists: no error
}

// daemonConfigFlag is -c of the commands that talk to the daemon: the
// config they find its address and token in (see connect.go). Unset, it
// is ./cutover.yaml when that exists.
func daemonConfigFlag(c *cobra.Command, o *opts) {
	c.Flags().StringVarP(&o.daemonConfig, "config", "c", "", "config file to find the daemon in: api.listen, api.token_file (default ./"+DefaultConfig+" if it exists)")
	_ = c.MarkFlagFilename("config", "yaml", "yml") // the flag exists: no error
}

// nargs accepts between lo and hi positional arguments.
func nargs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, pos []string) error {
		if len(pos) >= lo && len(pos) <= hi {
			return nil
		}
		msg := fmt.Sprintf("%s takes %s", cmd.Name(), argCount(lo, hi))
		if len(pos) > hi {
			msg += fmt.Sprintf("; unexpected %q", pos[hi])
		}
		return usageErr(msg)
	}
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

// help writes cmd's help: cutover's list of commands, or a command's
// usage line, summary and flags.
func (a *app) help(w io.Writer, cmd *cobra.Command) {
	if !cmd.HasParent() {
		a.usage(w)
		return
	}
	text := cmd.Long
	if text == "" {
		text = cmd.Short
	}
	fmt.Fprintf(w, "usage: %s\n\n%s\n", cmd.UseLine(), strings.TrimRight(text, "\n"))
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	fs.AddFlagSet(cmd.LocalFlags())
	fs.AddFlagSet(cmd.InheritedFlags())
	if usages := fs.FlagUsages(); usages != "" {
		fmt.Fprintf(w, "\nflags:\n%s", usages)
	}
}

// helpCommand is "cutover help [COMMAND]". A raw command (demo) is asked
// for its own help, with -h.
func (a *app) helpCommand() *cobra.Command {
	return &cobra.Command{
		Use: "help [COMMAND]", Short: "show help", Args: nargs(0, 1), DisableFlagsInUseLine: true,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, c := range a.visible {
				names = append(names, cobra.CompletionWithDesc(c.Name(), c.Short))
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		Run: func(cmd *cobra.Command, pos []string) {
			if len(pos) == 0 {
				a.usage(a.stdout)
				return
			}
			c := subcommand(cmd.Root(), pos[0])
			switch {
			case c == nil:
				a.code = a.usageError(nil, fmt.Sprintf("unknown command %q", pos[0]))
			case c.DisableFlagParsing:
				c.Run(c, []string{"-h"})
			default:
				a.help(a.stdout, c)
			}
		},
	}
}

// subcommand returns root's subcommand called name, or nil.
func subcommand(root *cobra.Command, name string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// unknownCommand is cutover's own argument check: any argument that
// reaches it names no command.
func (a *app) unknownCommand(root *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return usageErr(unknownCommandMessage(root, args[0]))
}

func unknownCommandMessage(root *cobra.Command, name string) string {
	msg := fmt.Sprintf("unknown command %q", name)
	if s := root.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	}
	return msg
}

func (a *app) serve(o *opts, pos []string) int {
	if a.cmds.Serve == nil {
		fmt.Fprintln(a.stderr, "cutover: serve is not available in this build")
		return ExitError
	}
	return a.cmds.Serve(a.ctx, ServeOptions{Config: o.config, AcceptEmptyStore: o.acceptEmptyStore, StopInstancesOnExit: o.stopInstances},
		a.stdout, a.stderr)
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
