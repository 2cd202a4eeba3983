package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/process"
	"github.com/cutover/cutover/internal/runtime/static"
)

// This file maps the configuration file's types to the options and
// settings of the layers below the daemon, which never see the YAML
// types: one place knows both.

// controllerSettings is what a service's deployment controller follows.
func controllerSettings(sc *config.Service) deploy.Settings {
	a := sc.Strategy.Analysis
	hooks := func(list []config.Hook) []deploy.Hook {
		var out []deploy.Hook
		for _, h := range list {
			out = append(out, deploy.Hook{Command: h.Command, URL: h.URL, Timeout: h.Timeout})
		}
		return out
	}
	h := sc.Hooks
	s := deploy.Settings{
		Name: sc.Name,
		Policy: deploy.Policy{Interval: a.Interval, MaxErrorRate: a.MaxErrorRate, MaxP99Latency: a.MaxP99Latency,
			MinRequests: a.MinRequests, ProgressDeadline: sc.Strategy.ProgressDeadline,
			KeepPrevious: sc.KeepPrevious, QuietPeriod: sc.QuietPeriod},
		Hooks: deploy.Hooks{PreProvision: hooks(h.PreProvision), PreTraffic: hooks(h.PreTraffic),
			PostTraffic: hooks(h.PostTraffic), PostPromote: hooks(h.PostPromote), PostRetire: hooks(h.PostRetire),
			OnRollback: hooks(h.OnRollback), Timeout: h.Timeout},
		DrainTimeout: sc.DrainTimeout,
	}
	for _, st := range sc.Strategy.Steps {
		s.Steps = append(s.Steps, deploy.Step{Weight: st.Weight, Pause: st.Pause, Manual: st.Manual})
	}
	if p := sc.Runtime.Process; p != nil {
		s.StartTimeout = p.StartTimeout
		// The service's env: hooks (the expand migration) reach what the
		// instances reach. Secrets and env_file are read at instance
		// start only, for now.
		s.Hooks.Env = p.Env
	}
	dockerSettings(sc, &s)
	return s
}

// instanceTLS is the TLS client configuration towards a service's
// instances (runtime.upstream_tls), or nil when they speak plain HTTP. It
// is built once per service and shared by the router and the health gates,
// so both verify instances the same way: TLS 1.2 at least, against the CA
// file when one is given (else the system roots), for ServerName when set.
func instanceTLS(sc *config.Service) (*tls.Config, error) {
	up := sc.Runtime.UpstreamTLS
	if up == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: up.ServerName}
	if up.CAFile != "" {
		pem, err := os.ReadFile(up.CAFile)
		if err != nil {
			return nil, fmt.Errorf("service %s: runtime.upstream_tls.ca_file: %w", sc.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("service %s: runtime.upstream_tls.ca_file %s holds no certificate", sc.Name, up.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// proxyOptions is a service's router. tlsConf is instanceTLS's, shared
// with the runtime's health gates.
func proxyOptions(sc *config.Service, tlsConf *tls.Config, log *slog.Logger) proxy.Options {
	h, t := sc.Health, sc.Timeouts
	o := proxy.Options{
		Service: sc.Name, TrustedProxies: sc.TrustedProxies, StickyCookie: sc.StickyCookie,
		FallbackPage: sc.FallbackPage, UpstreamTLS: tlsConf,
		Health: health.Config{Path: h.Path, Interval: h.Interval, Timeout: h.Timeout,
			HealthyThreshold: h.HealthyThreshold, UnhealthyThreshold: h.UnhealthyThreshold},
		DrainTimeout:      sc.DrainTimeout,
		ReadHeaderTimeout: t.ReadHeader, IdleTimeout: t.Idle, UpstreamHeaderTimeout: t.UpstreamHeader,
		H2C: sc.H2C, Logger: log,
	}
	if sc.TLS != nil {
		o.TLSCert, o.TLSKey = sc.TLS.Cert, sc.TLS.Key
	}
	return o
}

// gateOptions is how a service's runtime health-checks new instances.
func gateOptions(sc *config.Service, tlsConf *tls.Config) runtime.GateOptions {
	return runtime.GateOptions{Path: sc.Health.Path, Timeout: sc.Health.Timeout, TLS: tlsConf}
}

// processOptions is the process runtime of a service.
func processOptions(sc *config.Service, tlsConf *tls.Config, stateDir string, lis runtime.Listener,
	log *slog.Logger, ports *runtime.PortAllocator) process.Options {
	p := sc.Runtime.Process
	secrets := make(map[string]process.Secret, len(p.Secrets))
	for name, s := range p.Secrets {
		secrets[name] = process.Secret{File: s.File, Env: s.Env}
	}
	return process.Options{
		Service: sc.Name, Instances: sc.Instances, Parallel: sc.Start.Parallel,
		Command: p.Command, Env: p.Env, EnvFile: p.EnvFile, Secrets: secrets, InheritEnv: p.InheritEnv,
		Dir: p.Dir, StopTimeout: p.StopTimeout, StartTimeout: p.StartTimeout,
		Gate: gateOptions(sc, tlsConf), UnhealthyThreshold: sc.Health.UnhealthyThreshold,
		StateDir: stateDir, Listener: lis, Logger: log, Ports: ports,
	}
}

// staticOptions is the static runtime of a service.
func staticOptions(sc *config.Service, tlsConf *tls.Config, lis runtime.Listener, log *slog.Logger, st static.Store) static.Options {
	o := static.Options{Service: sc.Name, Gate: gateOptions(sc, tlsConf), ProbeEvery: sc.Health.Interval,
		Listener: lis, Logger: log, Store: st}
	if s := sc.Runtime.Static; s != nil {
		o.Versions = s.Versions
	}
	return o
}
