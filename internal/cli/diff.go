package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

const diffHelp = `Compares what the service's two colours run: command, environment (secret
values as hashes), working directory, runtime and health settings, the
binary's digest. When one colour runs nothing, it is compared with what that
colour would run for the same version under the current config. Every
difference but version, colour and preflight.drift.ignore_env is a finding,
and so is an environment value that names a colour (app-uploads-green).
Reads the config file (-c FILE, else ./cutover.yaml) and the state
directory; needs no daemon.

exit codes: 0 clean, 1 findings, 2 usage (or a config that cannot be used)`

func (a *app) diffCommand(o *opts) *cobra.Command {
	c := a.command("diff SERVICE [-c FILE] [--json]", "what differs between the blue and green pools", nargs(1, 1), (*app).diff)
	c.Long = diffHelp
	c.ValidArgsFunction = a.completeService
	configFlag(c, o)
	jsonFlag(c, o)
	return c
}

func (a *app) diff(o *opts, pos []string) int {
	chk, code := a.checker(o, pos[0])
	if chk == nil {
		return code
	}
	rep, err := chk.Diff(a.ctx)
	if err != nil {
		fmt.Fprintf(a.stderr, "cutover: diff %s: %v\n", pos[0], err)
		return ExitError
	}
	if o.json {
		if code := a.printJSON(rep); code != ExitOK {
			return code
		}
	} else {
		fmt.Fprint(a.stdout, rep.Text())
		fmt.Fprintf(a.stdout, "%d %s\n", len(rep.Findings), plural(len(rep.Findings), "finding"))
		for _, f := range rep.Findings {
			fmt.Fprintf(a.stdout, "%s\n    fix: %s\n", f, f.Fix)
		}
	}
	if len(rep.Findings) > 0 {
		return ExitError
	}
	return ExitOK
}
