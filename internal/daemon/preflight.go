package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/envfile"
	"github.com/cutover/cutover/internal/preflight"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/docker"
	"github.com/cutover/cutover/internal/runtime/process"
)

// This file maps a service's preflight section to the release safety
// checker (package preflight), for the controller (the preflight job at
// the start of every deployment, the database watch during it) and for
// the CLI's `cutover preflight` and `cutover diff`, which run without a
// daemon.

// preflightOptions is sc's checker configuration; describer says what the
// colours run (nil when the runtime cannot).
func preflightOptions(sc *config.Service, describer runtime.Describer) preflight.Options {
	o := preflight.Options{Service: sc.Name, Instances: sc.Instances, Describer: describer, Env: serviceEnv(sc)}
	p := sc.Preflight
	if p == nil {
		return o
	}
	if db := p.Database; db != nil {
		o.Database = &preflight.DatabaseOptions{Dialect: db.Dialect, URLEnv: db.URLEnv, PerInstance: db.ConnectionsPerInstance,
			PoolEnv: db.PoolEnv, ReservePercent: db.ReservePercent, ReserveAbsolute: db.ReserveAbsolute}
	}
	if m := p.Migrations; m != nil {
		o.Migrations = &preflight.MigrationOptions{Dir: m.Dir, Dialect: m.Dialect, Allow: m.Allow}
	}
	if d := p.Drift; d != nil {
		o.Drift = &preflight.DriftOptions{IgnoreEnv: d.IgnoreEnv}
	}
	return o
}

// serviceEnv reads the service's environment as an instance gets it from
// its configuration (env_file, env, secrets, then the release's own),
// afresh at every call. Errors name the file or variable, never a value.
func serviceEnv(sc *config.Service) func(release map[string]string) (map[string]string, error) {
	return func(release map[string]string) (map[string]string, error) {
		env := map[string]string{}
		vars, envFile, secrets, ok := sc.Runtime.InstanceEnv()
		if !ok {
			maps.Copy(env, release)
			return env, nil
		}
		if envFile != "" {
			file, err := envfile.Read(envFile)
			if err != nil {
				return nil, fmt.Errorf("env_file: %w", err)
			}
			maps.Copy(env, file)
		}
		maps.Copy(env, vars)
		maps.Copy(env, release)
		for name, s := range secrets {
			v, err := readSecret(s)
			if err != nil {
				return nil, fmt.Errorf("secret %s: %w", name, err)
			}
			env[name] = v
		}
		return env, nil
	}
}

func readSecret(s config.Secret) (string, error) {
	if s.Env != "" {
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("the daemon's environment has no %s", s.Env)
		}
		return v, nil
	}
	b, err := os.ReadFile(s.File)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// PreflightChecker is the checker of service name in cfg for the CLI,
// without a daemon: a process runtime is described from its record file
// under the state directory and /proc, a Docker runtime from its engines'
// containers (by their labels), an asg runtime from its groups and launch
// template; a static runtime has no drift check.
func PreflightChecker(cfg *config.Config, name string) (*preflight.Checker, error) {
	sc, ok := cfg.Services[name]
	if !ok {
		return nil, fmt.Errorf("service %q is not in %s", name, cfg.File)
	}
	var describer runtime.Describer
	switch {
	case sc.Runtime.Process != nil:
		describer = process.NewDescriber(processOptions(sc, nil, cfg.StateDir, nil, nil, nil))
	case sc.Runtime.Docker != nil:
		drv, err := docker.New(dockerOptions(sc, nil, nil, slog.New(slog.DiscardHandler), nil, nil))
		if err != nil {
			return nil, err
		}
		describer = drv
	case sc.Runtime.ASG != nil:
		d, err := ASGDescriber(context.Background(), sc)
		if err != nil {
			return nil, err
		}
		describer = d
	}
	return preflight.New(preflightOptions(sc, describer)), nil
}

// reportLimit bounds the report a deployment's history keeps.
const reportLimit = 16 << 10

// preflightSettings are the controller's preflight job and database watch
// for sc, both nil without a preflight section.
func (svc *service) preflightSettings(sc *config.Service) (deploy.PreflightFunc, func() *deploy.DatabaseFigures) {
	if sc.Preflight == nil {
		return nil, nil
	}
	describer, _ := svc.driver.(runtime.Describer)
	checker := preflight.New(preflightOptions(sc, describer))
	log := svc.log
	run := func(ctx context.Context, req deploy.PreflightRequest) (string, string, error) {
		pr := preflight.Request{Version: req.Version, Candidate: req.Color, Env: req.Env, NoLive: req.Live == nil}
		if req.Live != nil {
			pr.Live = &runtime.PoolRef{Color: req.Live.Color, Version: req.Live.Version}
		}
		rep, err := checker.Run(ctx, pr)
		if err != nil {
			msg := "preflight could not run: " + err.Error()
			return msg, "", errors.New(msg)
		}
		if v := svc.allowDrift.Load(); v != nil && *v == req.Version {
			acceptDrift(rep)
		}
		failed := rep.Failed()
		log.Info("preflight", "version", req.Version, "findings", len(failed))
		text := rep.Text()
		if len(text) > reportLimit {
			text = text[:reportLimit] + "\n... (cut; cutover preflight " + sc.Name + " " + req.Version + " prints it all)\n"
		}
		if len(failed) > 0 {
			return rep.Summary(), text, errors.New(rep.Summary())
		}
		return rep.Summary(), text, nil
	}
	var watch func() *deploy.DatabaseFigures
	if w := checker.Watch(sc.Strategy.Analysis.Interval); w != nil {
		watch = func() *deploy.DatabaseFigures {
			s := w.Latest()
			if s == nil {
				return nil
			}
			return &deploy.DatabaseFigures{Connections: s.Connections, Budget: s.Budget, Max: s.Max, Refused: s.Refused,
				Over: s.Over, Reason: s.Reason, At: s.At, Err: s.Err}
		}
	}
	return run, watch
}

// noteAllowDrift remembers whether the deployment of version about to
// start was asked for with --allow-drift, for its preflight job, which
// runs later on the controller's own context. It is not persisted: a
// preflight run again after a daemon restart checks drift as usual.
// The returned func puts the previous note back.
func (svc *service) noteAllowDrift(ctx context.Context, version string) (undo func()) {
	v := ""
	if api.AllowDrift(ctx) {
		v = version
	}
	prev := svc.allowDrift.Swap(&v)
	return func() { svc.allowDrift.CompareAndSwap(&v, prev) }
}

// acceptDrift marks the drift findings of rep accepted by --allow-drift:
// shown in the report and history, but not failing the deployment.
func acceptDrift(rep *preflight.Report) {
	for i, f := range rep.Findings {
		if f.Check == preflight.CheckDrift && f.Allowed == "" {
			rep.Findings[i].Allowed = "deploy --allow-drift"
		}
	}
}
