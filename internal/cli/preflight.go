package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/preflight"
	"github.com/cutover/cutover/internal/runtime"
)

// preflightHelp is `cutover help preflight`'s text.
const preflightHelp = `Runs the service's release safety checks for VERSION from the config file
(-c FILE, else ./cutover.yaml), without a daemon: database headroom for the
candidate's connection pools, the migration lint of preflight.migrations.dir,
and the drift between what live runs and what the candidate would run.
The same checks run at the start of every deployment, whose failure fails
the deployment before anything starts.

exit codes: 0 clean, 1 findings, 2 usage (or a config that cannot be used)`

func (a *app) preflightCommand(o *opts) *cobra.Command {
	c := a.command("preflight SERVICE VERSION [-c FILE] [--json]", "release safety checks for a version: database headroom, migrations, drift", nargs(2, 2), (*app).preflight)
	c.Long = preflightHelp
	c.ValidArgsFunction = a.completeService
	configFlag(c, o)
	jsonFlag(c, o)
	return c
}

// checker loads the config and builds the named service's checker; a
// problem is a usage error (exit 2).
func (a *app) checker(o *opts, service string) (*preflight.Checker, int) {
	if a.cmds.Preflight == nil {
		fmt.Fprintln(a.stderr, "cutover: preflight is not available in this build")
		return nil, ExitUsage
	}
	cfg, err := config.Load(o.config)
	if err != nil {
		var verr *config.ValidationError
		if errors.As(err, &verr) {
			for _, p := range verr.Problems {
				fmt.Fprintln(a.stderr, p.String())
			}
			fmt.Fprintf(a.stderr, "cutover: %s is invalid (cutover validate -c %s)\n", o.config, o.config)
			return nil, ExitUsage
		}
		fmt.Fprintf(a.stderr, "cutover: %v\n", err)
		return nil, ExitUsage
	}
	if _, ok := cfg.Services[service]; !ok {
		return nil, a.usageError(a.current, fmt.Sprintf("no service %q in %s (services: %v)", service, o.config, cfg.ServiceNames))
	}
	chk, err := a.cmds.Preflight(cfg, service)
	if err != nil {
		fmt.Fprintf(a.stderr, "cutover: %v\n", err)
		return nil, ExitUsage
	}
	return chk, ExitOK
}

func (a *app) preflight(o *opts, pos []string) int {
	chk, code := a.checker(o, pos[0])
	if chk == nil {
		return code
	}
	rep, err := chk.Run(a.ctx, a.preflightRequest(o, pos[0], pos[1]))
	if err != nil {
		fmt.Fprintf(a.stderr, "cutover: preflight %s %s: %v\n", pos[0], pos[1], err)
		return ExitUsage
	}
	if o.json {
		if code := a.printJSON(rep); code != ExitOK {
			return code
		}
	} else {
		fmt.Fprint(a.stdout, rep.Text())
	}
	if len(rep.Failed()) > 0 {
		return ExitError
	}
	return ExitOK
}

// preflightRequest asks the daemon, when one answers within a second,
// which colour is live, so that the drift check compares live with what
// the candidate would run; without one the check finds the running
// colours itself.
func (a *app) preflightRequest(o *opts, service, version string) preflight.Request {
	req := preflight.Request{Version: version}
	if o.daemonConfig == "" {
		o.daemonConfig = o.config
	}
	ctx, cancel := context.WithTimeout(a.ctx, time.Second)
	defer cancel()
	st, err := a.client().Status(ctx, service)
	if err != nil {
		return req
	}
	if st.Live == nil {
		req.NoLive = true
		return req
	}
	req.Live = &runtime.PoolRef{Color: st.Live.Color, Version: st.Live.Version}
	req.Candidate = st.Live.Color.Other()
	return req
}
