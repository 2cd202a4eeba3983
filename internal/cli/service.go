package cli

import (
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"runtime/debug"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// printJSON writes v indented, as the --json output of a command.
func (a *app) printJSON(v any) int {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return a.fail(fmt.Errorf("write output: %w", err))
	}
	return ExitOK
}

func (a *app) status(o *opts, pos []string) int {
	ctx, cancel := a.callCtx()
	defer cancel()
	c := a.client()
	var all []deploy.Status
	if len(pos) == 1 {
		st, err := c.Status(ctx, pos[0])
		if err != nil {
			return a.fail(err)
		}
		if o.json {
			return a.printJSON(st)
		}
		all = []deploy.Status{st}
	} else {
		var err error
		if all, err = c.Services(ctx); err != nil {
			return a.fail(err)
		}
		if o.json {
			if all == nil {
				all = []deploy.Status{}
			}
			return a.printJSON(all)
		}
	}
	if err := writeStatusTable(a.stdout, all, a.loc); err != nil {
		return a.fail(fmt.Errorf("write output: %w", err))
	}
	return ExitOK
}

func (a *app) action(verb string, o *opts, service string) int {
	ctx, cancel := a.callCtx()
	defer cancel()
	c := a.client()
	do := map[string]func() (deploy.Status, error){
		"promote":  func() (deploy.Status, error) { return c.Promote(ctx, service) },
		"rollback": func() (deploy.Status, error) { return c.Rollback(ctx, service) },
		"pause":    func() (deploy.Status, error) { return c.Pause(ctx, service) },
		"resume":   func() (deploy.Status, error) { return c.Resume(ctx, service) },
		"abort":    func() (deploy.Status, error) { return c.Abort(ctx, service) },
	}[verb]
	st, err := do()
	if err != nil {
		return a.fail(fmt.Errorf("%s %s: %w", verb, service, err))
	}
	if o.json {
		return a.printJSON(st)
	}
	fmt.Fprintf(a.stdout, "%s: %s accepted; %s\n", service, verb, summary(st))
	return ExitOK
}

func (a *app) history(o *opts, pos []string) int {
	ctx, cancel := a.callCtx()
	defer cancel()
	if o.limit < 0 {
		return a.usageError(a.current, "--limit must be >= 0")
	}
	ds, err := a.client().History(ctx, pos[0], o.limit)
	if err != nil {
		return a.fail(err)
	}
	if o.json {
		if ds == nil {
			ds = []deploy.Deployment{}
		}
		return a.printJSON(ds)
	}
	if len(ds) == 0 {
		fmt.Fprintf(a.stdout, "%s: no deployments yet\n", pos[0])
		return ExitOK
	}
	if err := writeHistoryTable(a.stdout, ds, a.loc); err != nil {
		return a.fail(fmt.Errorf("write output: %w", err))
	}
	return ExitOK
}

func (a *app) logs(o *opts, pos []string) int {
	var color *route.Color
	if o.color != "" {
		c, err := route.ParseColor(o.color)
		if err != nil {
			return a.usageError(a.current, "--color: "+err.Error())
		}
		color = &c
	}
	ctx, cancel := a.ctx, func() {}
	if !o.follow {
		ctx, cancel = a.callCtx()
	}
	defer cancel()
	if err := a.client().Logs(ctx, pos[0], color, o.follow, a.stdout); err != nil {
		return a.fail(err)
	}
	return ExitOK
}

func (a *app) register(o *opts, pos []string) int {
	ctx, cancel := a.callCtx()
	defer cancel()
	if err := a.client().Register(ctx, pos[0], pos[1], pos[2]); err != nil {
		return a.fail(fmt.Errorf("register %s %s %s: %w", pos[0], pos[1], pos[2], err))
	}
	fmt.Fprintf(a.stdout, "%s: registered %s for version %s\n", pos[0], pos[2], pos[1])
	return ExitOK
}

func (a *app) deregister(o *opts, pos []string) int {
	ctx, cancel := a.callCtx()
	defer cancel()
	if err := a.client().Deregister(ctx, pos[0], pos[1], pos[2]); err != nil {
		return a.fail(fmt.Errorf("deregister %s %s %s: %w", pos[0], pos[1], pos[2], err))
	}
	fmt.Fprintf(a.stdout, "%s: deregistered %s of version %s\n", pos[0], pos[2], pos[1])
	return ExitOK
}

func (a *app) reload(o *opts, pos []string) int {
	ctx, cancel := a.callCtx()
	defer cancel()
	if err := a.client().Reload(ctx); err != nil {
		// The daemon's message says whether nothing was applied (a
		// refusal) or all but what it names.
		return a.fail(fmt.Errorf("reload:\n%w", err))
	}
	fmt.Fprintln(a.stdout, "config reloaded")
	return ExitOK
}

func (a *app) version(o *opts, pos []string) int {
	fmt.Fprintf(a.stdout, "cutover %s %s %s/%s\n", buildVersion(), goruntime.Version(), goruntime.GOOS, goruntime.GOARCH)
	return ExitOK
}

// buildVersion is the module version the binary was built from, or "(devel)".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
