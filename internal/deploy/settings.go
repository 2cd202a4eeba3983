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
	// PreviewURL, when not nil, is what hooks get as PREVIEW_URL instead
	// of Options.PreviewURL: the preview listener moved by a reload ("" is
	// none).
	PreviewURL *string
	// DrainTimeout bounds a drain before a pool is stopped anyway;
	// default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// StartTimeout bounds the health gate a new pool passes in the router
	// before traffic; default DefaultStartTimeout.
	StartTimeout time.Duration
	// Preflight, when set, runs the release safety checks at the start of
	// every deployment (JobPreflight); Database, when set, returns the
	// latest database connection figures without blocking, for the
	// analysis (see preflight.go).
	Preflight PreflightFunc
	Database  func() *DatabaseFigures
}

// Hooks are what runs at a deployment's lifecycle points, each list in
// order until one fails. Every hook run is recorded in the deployment's
// history with its output (Event.Output), passed or failed.
type Hooks struct {
	// PreProvision runs once per deployment before the candidate starts
	// (the expand migration). A failure fails the deployment with nothing
	// started: the candidate's colour is left as it was.
	PreProvision []Hook
	// PreTraffic runs once the candidate is healthy, before any user
	// traffic; a failure fails the deployment.
	PreTraffic []Hook
	// PostTraffic, then PostPromote, run once the candidate has taken all
	// traffic. A failure is recorded and logged; the promotion stands.
	PostTraffic, PostPromote []Hook
	// PostRetire runs once the previous pool of a promotion has been
	// retired after keep_previous, when no old version runs (the contract
	// migration). A failure is recorded and logged. It does not run after
	// a rollback, nor when the next deployment replaces the kept pool
	// before keep_previous is over: that deployment's post_retire follows.
	PostRetire []Hook
	// OnRollback runs when a candidate that took traffic is rolled back.
	OnRollback []Hook
	// Env is added to every command hook's environment, after the
	// daemon's own and before the variables cutover sets (SERVICE,
	// VERSION, COLOR, DEPLOYMENT, PREVIEW_URL, ...): the service's env.
	Env map[string]string
	// Secrets, when set, is called before each hook job for the service's
	// env_file variables (under Env) and secrets (over it), read afresh;
	// its values reach the hook's environment and nothing else.
	Secrets func() (file, secrets map[string]string, err error)
	// Timeout bounds each hook that sets none; default DefaultHookTimeout.
	Timeout time.Duration
}

// Hook is one hook: a shell command run through `sh -c` (Command), or a
// webhook (URL) that gets the deployment's JSON (WebhookBody) in a POST
// and passes with a 2xx answer. Exactly one of Command and URL is set.
type Hook struct {
	Command string
	URL     string
	// Timeout bounds this hook; 0 takes Hooks.Timeout.
	Timeout time.Duration
}

// Commands returns a hook list of shell commands.
func Commands(lines ...string) []Hook {
	out := make([]Hook, len(lines))
	for i, l := range lines {
		out[i] = Hook{Command: l}
	}
	return out
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
