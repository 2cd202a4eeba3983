package daemon

import (
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/deploy"
)

// This file maps the configuration file's types to the options and
// settings of the layers below the daemon, which never see the YAML
// types: one place knows both.

// controllerSettings is what a service's deployment controller follows.
func controllerSettings(sc *config.Service) deploy.Settings {
	a := sc.Strategy.Analysis
	s := deploy.Settings{
		Name: sc.Name,
		Policy: deploy.Policy{Interval: a.Interval, MaxErrorRate: a.MaxErrorRate, MaxP99Latency: a.MaxP99Latency,
			MinRequests: a.MinRequests, ProgressDeadline: sc.Strategy.ProgressDeadline,
			KeepPrevious: sc.KeepPrevious, QuietPeriod: sc.QuietPeriod},
		Hooks: deploy.Hooks{PreTraffic: sc.Hooks.PreTraffic, PostTraffic: sc.Hooks.PostTraffic,
			OnRollback: sc.Hooks.OnRollback, Timeout: sc.Hooks.Timeout},
		DrainTimeout: sc.DrainTimeout,
	}
	for _, st := range sc.Strategy.Steps {
		s.Steps = append(s.Steps, deploy.Step{Weight: st.Weight, Pause: st.Pause, Manual: st.Manual})
	}
	if p := sc.Runtime.Process; p != nil {
		s.StartTimeout = p.StartTimeout
	}
	return s
}
