package deploy

import "time"

// Settings are the parts of a service's configuration the controller
// follows. The daemon builds them from the configuration file, in one
// place; a zero field takes the default below, so a test or another caller
// sets only what it cares about.
type Settings struct {
	// Name is the service's name, used in store keys, messages and history.
	Name string
	// Steps are the configured strategy's steps (strategy "").
	Steps []Step
	// Policy holds the analysis limits, keep_previous, the quiet period and
	// the progress deadline; zero Interval and ProgressDeadline take
	// DefaultInterval and DefaultProgressDeadline. A zero MaxP99Latency
	// disables the latency check and a zero KeepPrevious or QuietPeriod
	// means none: those zeros are meant.
	Policy Policy
	// Hooks are the lifecycle commands.
	Hooks Hooks
	// DrainTimeout bounds a drain before a pool is stopped anyway;
	// default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// StartTimeout bounds the health gate a new pool passes in the router
	// before traffic; default DefaultStartTimeout.
	StartTimeout time.Duration
}

// Hooks are the commands run, through `sh -c`, at lifecycle points.
type Hooks struct {
	PreTraffic, PostTraffic, OnRollback []string
	// Timeout bounds each hook; default DefaultHookTimeout.
	Timeout time.Duration
}

// The controller's defaults for zero Settings fields.
const (
	DefaultInterval         = time.Second
	DefaultProgressDeadline = 10 * time.Minute
	DefaultDrainTimeout     = 30 * time.Second
	DefaultStartTimeout     = time.Minute
	DefaultHookTimeout      = 5 * time.Minute
)

// withDefaults returns s with every zero field that has a default set.
func (s Settings) withDefaults() Settings {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.Policy.Interval, DefaultInterval)
	def(&s.Policy.ProgressDeadline, DefaultProgressDeadline)
	def(&s.DrainTimeout, DefaultDrainTimeout)
	def(&s.StartTimeout, DefaultStartTimeout)
	def(&s.Hooks.Timeout, DefaultHookTimeout)
	return s
}
