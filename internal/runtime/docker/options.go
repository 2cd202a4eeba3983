package docker

import (
	"log/slog"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// Pull policies.
const (
	PullAlways  = "always"
	PullMissing = "missing"
	PullNever   = "never"
)

// The driver's defaults for zero Options fields.
const (
	DefaultStopTimeout  = 10 * time.Second
	DefaultStartTimeout = 2 * time.Minute
	DefaultPingTimeout  = 5 * time.Second
)

// Options configure a Driver. Service, Image and Port are required.
type Options struct {
	// Service is the name of the service whose containers the driver runs.
	Service string
	// Instances is the number of containers per colour; default 1.
	Instances int
	// Image is the image reference, with ${VERSION} (and ${SERVICE})
	// substituted: "registry.example.com/web:${VERSION}".
	Image string
	// Hosts are the Docker Engines to run on: unix:///path, tcp://host:port
	// (TLS from DOCKER_CERT_PATH and DOCKER_TLS_VERIFY when set), or
	// ssh://user@host (runs `ssh host docker system dial-stdio`). Empty
	// means DOCKER_HOST, or the local socket.
	Hosts []string
	// Port is the container port the application listens on.
	Port int
	// Env is added to each container's environment, with ${PORT},
	// ${VERSION}, ${COLOR}, ${SERVICE} and ${INSTANCE} substituted. The
	// environment is, each overriding the one before: InheritEnv,
	// EnvFile, Env, the release's env, Secrets, and the driver's own PORT,
	// VERSION, COLOR, SERVICE and INSTANCE.
	Env        map[string]string
	EnvFile    string
	Secrets    map[string]Secret
	InheritEnv []string
	// Network is the network containers join; "" is the engine's default
	// bridge, "host" the host's network (PORT is then a free host port).
	Network string
	// Pull is PullAlways, PullMissing (default) or PullNever.
	Pull string
	// Memory limits each container, in bytes (0: none); NanoCPUs its CPU
	// share in billionths of a CPU (0: none).
	Memory   int64
	NanoCPUs int64
	// StopTimeout is how long SIGTERM has before the engine kills the
	// container; default DefaultStopTimeout.
	StopTimeout time.Duration
	// StartTimeout bounds each new container's pull, start and health
	// gate; default DefaultStartTimeout.
	StartTimeout time.Duration
	// Labels are added to every container besides cutover's own.
	Labels map[string]string
	// Gate is how new containers are health-checked.
	Gate runtime.GateOptions
	// Listener receives pool changes and failures; nil discards them.
	Listener runtime.Listener
	// Progress receives image pull progress; nil discards it.
	Progress func(PullProgress)
	// Logger receives the driver's own events; nil discards them.
	Logger *slog.Logger
	// Ports hands out host ports for host networking on the local engine.
	Ports *runtime.PortAllocator

	// RestartBackoff is the first delay before an exited container is
	// replaced; it doubles up to MaxRestartBackoff. Defaults 200ms, 5s.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// CrashLoopRestarts and CrashLoopWindow: more exits than that within
	// the window fail the pool. Defaults 5 and 60s.
	CrashLoopRestarts int
	CrashLoopWindow   time.Duration
	// WatchInterval is how often each container is inspected; default 500ms.
	WatchInterval time.Duration
	// PingTimeout bounds the reachability check of a host; default
	// DefaultPingTimeout.
	PingTimeout time.Duration
}

// Secret says where a secret variable's value is read from at every
// container start: exactly one of File and Env (of the daemon's).
type Secret struct {
	File string
	Env  string
}

// PullProgress is one report of an image pull on one host.
type PullProgress struct {
	Host  string
	Image string
	// Layers and LayersDone count the image's layers seen so far and
	// those downloaded (or already present).
	Layers, LayersDone int
	// Bytes and Total are the bytes downloaded and to download, over the
	// layers whose size is known.
	Bytes, Total int64
	// Done is set on the last report of a pull that succeeded.
	Done bool
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.StopTimeout, DefaultStopTimeout)
	def(&o.StartTimeout, DefaultStartTimeout)
	def(&o.RestartBackoff, 200*time.Millisecond)
	def(&o.MaxRestartBackoff, 5*time.Second)
	def(&o.CrashLoopWindow, time.Minute)
	def(&o.WatchInterval, 500*time.Millisecond)
	def(&o.PingTimeout, DefaultPingTimeout)
	def(&o.Gate.Timeout, runtime.DefaultProbeTimeout)
	o.Instances = max(o.Instances, 1)
	if o.CrashLoopRestarts <= 0 {
		o.CrashLoopRestarts = 5
	}
	if o.Pull == "" {
		o.Pull = PullMissing
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Listener == nil {
		o.Listener = discard{}
	}
	if o.Progress == nil {
		o.Progress = func(PullProgress) {}
	}
	if o.Ports == nil {
		o.Ports = &runtime.PortAllocator{}
	}
}

type discard struct{}

func (discard) Pool(route.Color, string, []runtime.Instance) {}
func (discard) Failed(route.Color, string, error)            {}
