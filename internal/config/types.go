package config

import "time"

// Config is a whole cutover configuration after defaults have been applied.
// Durations are time.Duration, percentages are fractions (1% is 0.01) except
// step weights, which stay in percent (0-100) as written.
type Config struct {
	// File is the absolute path the configuration was read from ("" when built in code).
	File string
	// API configures the control API.
	API API
	// StateDir is where the store, instance records and logs live; relative
	// paths in the file are resolved against the config file's directory.
	StateDir string
	// Services holds every service by name; ServiceNames lists them sorted.
	Services     map[string]*Service
	ServiceNames []string

	// name is the file name as the user gave it, for messages; pos locates
	// every key that was read, so Validate can point at lines. Both are
	// empty for a Config built in code.
	name string
	pos  map[string]position
}

// API configures the control API listener.
type API struct {
	// Listen is the control API address; default 127.0.0.1:7070.
	Listen string
	// TokenFile, when set, holds the bearer token every mutating call needs.
	TokenFile string
	// AllowedHosts are the Host header values the API answers to besides
	// its listen address, localhost and loopback IPs (api.allowed_hosts):
	// "name" on any port, "name:port" on that port only, "*.example.com"
	// any name under example.com. Every other Host is refused (421), which
	// stops DNS rebinding.
	AllowedHosts HostList
}

// Service is one application released as a unit.
type Service struct {
	// Name matches [a-z0-9-]{1,63}.
	Name string
	// Listen is the public router address.
	Listen string
	// PreviewListen reaches only the candidate (idle) colour; "" disables it.
	PreviewListen string
	// TLS, when set, makes Listen serve HTTPS (HTTP/2 and HTTP/1.1).
	TLS *TLS
	// H2C allows cleartext HTTP/2 (prior knowledge) on Listen.
	H2C bool
	// TrustedProxies are CIDRs whose X-Forwarded-* headers are kept and
	// extended; from anyone else they are replaced.
	TrustedProxies []string
	// StickyCookie is the name of the cookie that keeps a client on its
	// colour; default "cutover_<name>"; "-" disables stickiness.
	StickyCookie string
	// Instances is the number of instances per colour; default 1.
	Instances int
	// Start is how a new pool's instances are started.
	Start Start
	// Runtime says what starts the instances (processes or static addresses).
	Runtime Runtime
	// Traffic says what moves public traffic: the embedded router (zero
	// value), an ALB or Route53 (traffic.go).
	Traffic Traffic
	// Health configures the active checks every instance must pass.
	Health Health
	// Timeouts protect the router from slow clients and instances.
	Timeouts Timeouts
	// DrainTimeout bounds how long a pool or instance leaving rotation may
	// finish in-flight requests and streams; default 30s.
	DrainTimeout time.Duration
	// Strategy is how traffic moves to a candidate and how it is judged.
	Strategy Strategy
	// KeepPrevious is how long the old pool stays warm after a promotion; default 1h.
	KeepPrevious time.Duration
	// QuietPeriod is how long the previous pool must have seen no requests
	// before it is retired once KeepPrevious has passed; default 10s.
	QuietPeriod time.Duration
	// Hooks are commands run at lifecycle points of a deployment.
	Hooks Hooks
	// FallbackPage is a file served with 503 when no pool is healthy; ""
	// serves a built-in page. Resolved against the config file's directory.
	FallbackPage string
	// Preflight holds the release safety checks (preflight.go); nil for none.
	Preflight *Preflight
}

// TLS names a certificate and key in PEM files.
type TLS struct {
	// Cert is the certificate chain file; Key its private key file. Both
	// are required and resolved against the config file's directory.
	Cert string
	Key  string
}

// Runtime says what starts a service's instances. Exactly one of Process,
// Docker and Static is set.
type Runtime struct {
	Process *Process
	Docker  *Docker
	Static  *Static
	// ASG makes two Auto Scaling groups the pools (asg.go).
	ASG *ASG
	// UpstreamTLS, when set, makes the router talk HTTPS to instances.
	UpstreamTLS *UpstreamTLS
}

// Process runs instances as local child processes.
type Process struct {
	// Command is argv; ${PORT}, ${VERSION}, ${COLOR}, ${SERVICE} and
	// ${INSTANCE} are substituted in every element.
	Command []string
	// Env is added to the instance's environment; values are substituted
	// like Command. An instance's environment holds only PATH, HOME, LANG
	// and TZ of the daemon's, then, each overriding the one before:
	// InheritEnv, EnvFile, Env, Secrets, and the variables cutover sets
	// (PORT, VERSION, COLOR, SERVICE, INSTANCE, CUTOVER_MARK).
	Env map[string]string
	// EnvFile is a file of KEY=VALUE lines (see envfile.Parse), read at
	// every instance start; "" for none. Resolved against the config
	// file's directory.
	EnvFile string
	// Secrets are variables whose values are read at every instance start,
	// each from a file or from the daemon's environment; their values are
	// never logged or recorded.
	Secrets map[string]Secret
	// InheritEnv names variables of the daemon's environment that
	// instances get too (none but PATH, HOME, LANG and TZ otherwise).
	InheritEnv []string
	// Dir is the working directory; default the config file's directory.
	Dir string
	// StopTimeout is how long SIGTERM has before SIGKILL; default 10s.
	StopTimeout time.Duration
	// StartTimeout bounds how long each new instance may take to become
	// healthy, restarts after early exits included; default 60s.
	StartTimeout time.Duration
}

// Secret says where a secret variable's value comes from: exactly one of
// File (the file's content without its trailing newline; resolved against
// the config file's directory) and Env (a variable of the daemon's
// environment).
type Secret struct {
	File string
	Env  string
}

// Start is how a new pool's instances are started.
type Start struct {
	// Parallel is how many instances start at once; each must pass its
	// health check before the next one starts, so an app that migrates
	// its schema at start does so once, in the first. Default 1 (0 in a
	// Config built in code means 1); at most Instances.
	Parallel int
}

// Static lists fixed instance addresses ("host:port") per version.
type Static struct {
	Versions map[string][]string
}

// UpstreamTLS configures TLS from the router to instances.
type UpstreamTLS struct {
	// CAFile is a PEM bundle that instance certificates must chain to; ""
	// uses the system roots.
	CAFile string
	// ServerName overrides the name verified in instance certificates.
	ServerName string
}

// Health configures active health checks of every instance.
type Health struct {
	Path               string        // default /healthz
	Interval           time.Duration // default 1s
	Timeout            time.Duration // default 2s
	HealthyThreshold   int           // default 2
	UnhealthyThreshold int           // default 3
}

// Timeouts protect the router from slow clients and slow instances.
type Timeouts struct {
	ReadHeader     time.Duration // default 10s
	Idle           time.Duration // default 120s
	UpstreamHeader time.Duration // default 60s: instance must start its response within this
}

// Strategy is how traffic moves to a candidate. No steps means all at once.
type Strategy struct {
	Steps    []Step
	Analysis Analysis
	// ProgressDeadline bounds how long one step may wait for a conclusive
	// analysis beyond its pause before the deployment is rolled back; default 10m.
	ProgressDeadline time.Duration
}

// Step is one stage of a shift.
type Step struct {
	// Weight is the candidate's share of traffic in percent, 0 < Weight <=
	// 100, a multiple of MinWeight (0.01), and greater than the previous
	// step's.
	Weight float64
	// Pause is how long to hold the weight. Ignored when Manual.
	Pause time.Duration
	// Manual is true when the step has no pause duration: it holds until `cutover promote`.
	Manual bool
	// Line is the step's line in the config file, for messages.
	Line int
}

// Analysis sets the limits the candidate is judged against during every step.
type Analysis struct {
	Interval      time.Duration // default 1s
	MaxErrorRate  float64       // fraction; default 0.01
	MaxP99Latency time.Duration // default 1s; 0 disables the latency check
	MinRequests   int           // default 50
	// Alarms are CloudWatch alarm names; any in ALARM during a step rolls
	// the deployment back.
	Alarms []string
	// CloudWatch is how the CloudWatch analysis source reads metrics
	// (used only with an AWS traffic driver).
	CloudWatch CloudWatchMetrics
}

// Hooks are what runs at lifecycle points of a deployment, each list in
// order, stopping at the first failure: shell commands (each through
// `sh -c`) and webhooks.
type Hooks struct {
	// PreProvision runs once per deployment before the candidate starts
	// (the expand migration); a failure fails the deployment with nothing
	// started.
	PreProvision []Hook
	// PreTraffic runs once the candidate is healthy, before any user
	// traffic (smoke tests against PREVIEW_URL); a failure fails the
	// deployment.
	PreTraffic []Hook
	// PostTraffic and then PostPromote run once the candidate has taken
	// all traffic; a failure is recorded and never undoes the promotion.
	PostTraffic []Hook
	PostPromote []Hook
	// PostRetire runs once the previous pool of a promotion has been
	// retired (stopped), when no old version runs any more (the contract
	// migration); a failure is recorded.
	PostRetire []Hook
	// OnRollback runs when a candidate that took traffic is rolled back.
	OnRollback []Hook
	// Timeout bounds each hook that sets no timeout of its own; default 5m.
	Timeout time.Duration
}

// Hook is one entry of a hook list: a shell command (the plain string
// form, or {command: ...}) or a webhook ({url: ...}) that receives the
// deployment's JSON in a POST and passes with a 2xx answer. Exactly one
// of Command and URL is set.
type Hook struct {
	Command string
	URL     string
	// Timeout bounds this hook; 0 takes Hooks.Timeout.
	Timeout time.Duration
}
