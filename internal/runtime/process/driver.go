package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

var (
	_ runtime.Driver    = (*Driver)(nil)
	_ runtime.LogReader = (*Driver)(nil)
)

// The driver's defaults for zero Options fields.
const (
	DefaultStopTimeout        = 10 * time.Second
	DefaultStartTimeout       = time.Minute
	DefaultUnhealthyThreshold = health.DefaultUnhealthyThreshold
)

// Options configure a Driver. Service, Command and StateDir are required
// (a nil Listener discards reports); the other fields default when zero.
type Options struct {
	// Service is the name of the service whose instances the driver runs.
	Service string
	// Instances is the number of instances per colour; default 1.
	Instances int
	// Parallel is how many instances of a new pool start at once; each
	// must pass its health check before its place goes to the next slot.
	// Default 1; at most Instances.
	Parallel int
	// Command is the instance's argv, with ${PORT}, ${VERSION}, ${COLOR},
	// ${SERVICE} and ${INSTANCE} substituted.
	Command []string
	// Env is added to each instance's environment, values substituted
	// like Command. An instance's environment is built at its start from,
	// each overriding the one before: PATH, HOME, LANG and TZ of the
	// daemon's environment, InheritEnv, EnvFile, Env, Secrets, and the
	// driver's own PORT, VERSION, COLOR, SERVICE, INSTANCE and
	// CUTOVER_MARK. Nothing else of the daemon's environment reaches it.
	Env map[string]string
	// EnvFile, when set, is a file of KEY=VALUE lines (see
	// envfile.Parse) read at every instance start, so that a change
	// applies to the next instance. One that is missing or malformed fails
	// that instance's start, naming the file.
	EnvFile string
	// Secrets are variables whose values are read at every instance start
	// (a rotated secret file applies to the next instance). Their values
	// are never logged, recorded or reported: only the instance's
	// environment holds them.
	Secrets map[string]Secret
	// InheritEnv names variables of the daemon's environment that every
	// instance gets too; one the daemon lacks is left out.
	InheritEnv []string
	// Dir is the instances' working directory; "" is the daemon's.
	Dir string
	// StopTimeout is how long an instance has between SIGTERM and
	// SIGKILL; default DefaultStopTimeout.
	StopTimeout time.Duration
	// StartTimeout bounds how long each new instance may take to pass its
	// health check, restarts after early exits included; default
	// DefaultStartTimeout. A pool that starts Parallel instances at a time
	// may take ceil(Instances/Parallel) start timeouts.
	StartTimeout time.Duration
	// Gate is how new and adopted instances are health-checked.
	Gate runtime.GateOptions
	// UnhealthyThreshold is how many failed probes the router takes to
	// find an instance down; with Gate.Timeout it bounds the adopt gate.
	// Default DefaultUnhealthyThreshold.
	UnhealthyThreshold int
	// StateDir is the daemon's state directory. The driver owns
	// <StateDir>/instances/<service>.json and <StateDir>/logs/<service>/.
	StateDir string
	// Listener receives pool changes and failures.
	Listener runtime.Listener
	// Logger receives the driver's own events; nil discards them.
	Logger *slog.Logger
	// Ports is shared by every driver of a daemon so that ports never
	// collide; nil makes one for this driver.
	Ports *runtime.PortAllocator

	// RestartBackoff is the first delay before an exited instance is
	// replaced; it doubles per consecutive exit up to MaxRestartBackoff.
	// Defaults 100ms and 5s.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// A pool whose instances exit more than CrashLoopRestarts times within
	// CrashLoopWindow is reported through Listener.Failed and no longer
	// repaired; during Start, an instance that exits more than
	// CrashLoopRestarts times before it is healthy fails the start.
	// Defaults 5 and 60s.
	CrashLoopRestarts int
	CrashLoopWindow   time.Duration
	// LogMaxBytes is the size at which an instance's log file is rotated,
	// keeping LogKeep old files. Defaults 10 MiB and 3.
	LogMaxBytes int64
	LogKeep     int
	// LogCheckInterval is how often log sizes are checked; default 1s.
	LogCheckInterval time.Duration
	// WatchInterval is how often an adopted instance (not a child of this
	// daemon) is checked for life; default 200ms.
	WatchInterval time.Duration
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RestartBackoff, 100*time.Millisecond)
	def(&o.MaxRestartBackoff, 5*time.Second)
	def(&o.CrashLoopWindow, time.Minute)
	def(&o.LogCheckInterval, time.Second)
	def(&o.WatchInterval, 200*time.Millisecond)
	def(&o.StopTimeout, DefaultStopTimeout)
	def(&o.StartTimeout, DefaultStartTimeout)
	def(&o.Gate.Timeout, runtime.DefaultProbeTimeout)
	o.Instances = max(o.Instances, 1)
	o.Parallel = min(max(o.Parallel, 1), o.Instances)
	if o.UnhealthyThreshold <= 0 {
		o.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if o.CrashLoopRestarts <= 0 {
		o.CrashLoopRestarts = 5
	}
	if o.LogMaxBytes <= 0 {
		o.LogMaxBytes = 10 << 20
	}
	if o.LogKeep <= 0 {
		o.LogKeep = 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Ports == nil {
		o.Ports = &runtime.PortAllocator{}
	}
	if o.Listener == nil {
		o.Listener = discard{}
	}
}

type discard struct{}

func (discard) Pool(route.Color, string, []runtime.Instance) {}
func (discard) Failed(route.Color, string, error)            {}

// Driver runs the pools of one service as local processes. Create it with
// New; it must be closed with Close (which leaves instances running) or its
// pools stopped with Stop.
type Driver struct {
	name     string // the service's
	opts     Options
	log      *slog.Logger
	ports    *runtime.PortAllocator
	gate     atomic.Pointer[runtime.HealthGate] // replaced by SetGate
	listener runtime.Listener
	stateDir string
	parallel int // Options.Parallel as asked, before Scale bounds it by the pool's size

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	bg     sync.WaitGroup // log rotation and adopted-instance watchers

	opMu      [2]sync.Mutex // serialises Start/Stop per colour
	notifyMu  sync.Mutex    // serialises Listener calls
	persistMu sync.Mutex    // serialises record writes; guards written and writeErr
	// Record writes are committed in groups (see persist): asked counts
	// the calls to persist (guarded by mu), written is the count the last
	// finished write covered, writeErr its result.
	asked, written uint64
	writeErr       error

	mu    sync.Mutex // guards the fields below and instance.healthy
	pools [2]*pool
	// adopting holds, per colour, the record of a pool Adopt has not
	// decided yet, so that a record write meanwhile keeps its instances.
	adopting [2]*poolRecord
	closed   bool
}

// pool is the running pool of one colour.
type pool struct {
	color   route.Color
	version string
	env     map[string]string // the release's own environment (runtime.Release.Env)
	slots   []*instance       // index slot-1; nil while a slot waits for a replacement
	leaving []*instance       // removed by Scale, draining until they are stopped
	exits   runtime.Exits     // unexpected exits inside the crash-loop window
	failed  error
	ctx     context.Context // supervision; cancelled by Stop and Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup // slot supervisors
}

// New checks the service's process runtime and prepares the driver's
// directories. It starts nothing but the log rotator; call Adopt to take
// over instances a previous daemon left running, then Start.
func New(opts Options) (*Driver, error) {
	if opts.Service == "" {
		return nil, errors.New("process runtime: no service name")
	}
	if len(opts.Command) == 0 {
		return nil, fmt.Errorf("service %s: process runtime: empty command", opts.Service)
	}
	if opts.StateDir == "" {
		return nil, fmt.Errorf("service %s: process runtime: no state dir", opts.Service)
	}
	for name, sec := range opts.Secrets {
		if (sec.File == "") == (sec.Env == "") {
			return nil, fmt.Errorf("service %s: process runtime: secret %s needs exactly one of file and env", opts.Service, name)
		}
	}
	parallel := max(opts.Parallel, 1)
	opts.defaults()
	d := &Driver{parallel: parallel,
		name: opts.Service, opts: opts, log: opts.Logger.With("service", opts.Service), ports: opts.Ports,
		listener: opts.Listener, stateDir: opts.StateDir,
	}
	for _, dir := range []string{filepath.Dir(d.recordPath()), d.logDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("service %s: process runtime: %w", opts.Service, err)
		}
	}
	d.gate.Store(runtime.NewGate(opts.Gate))
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.bg.Go(func() { d.rotateLogs(d.ctx) })
	return d, nil
}

func (d *Driver) stopTimeout() time.Duration  { return d.opts.StopTimeout }
func (d *Driver) startTimeout() time.Duration { return d.opts.StartTimeout }

// Start launches Options.Instances processes of version in colour c,
// Options.Parallel at a time, each health-gated before the next starts and
// restarted with backoff if it exits before it is healthy, and returns them
// once every one passed its health check. A colour already running the
// version (and not failed) is returned as it is; one running another
// version is stopped first. On failure everything Start launched is
// stopped and the error names service, colour and version, and tells which
// instances failed and how (exit code or signal, last output), which were
// still starting and which never started; the other colour is never
// touched.
func (d *Driver) Start(ctx context.Context, c route.Color, rel runtime.Release) ([]runtime.Instance, error) {
	version := rel.Version
	d.opMu[c].Lock()
	defer d.opMu[c].Unlock()
	d.mu.Lock()
	closed, p := d.closed, d.pools[c]
	d.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("service %s: start %s %s: driver closed", d.name, c, version)
	}
	if p != nil {
		d.mu.Lock()
		same := p.version == version && maps.Equal(p.env, rel.Env) && p.failed == nil
		d.mu.Unlock()
		if same {
			return d.Instances(c), nil
		}
		d.stopPool(ctx, p)
	}
	if err := d.startPool(ctx, c, rel); err != nil {
		return nil, fmt.Errorf("service %s: start %s %s: %w", d.name, c, version, err)
	}
	return d.Instances(c), nil
}

func (d *Driver) newPool(c route.Color, rel runtime.Release, n int) *pool {
	p := &pool{color: c, version: rel.Version, env: rel.Env, slots: make([]*instance, n)}
	p.ctx, p.cancel = context.WithCancel(d.ctx)
	return p
}

// instanceError adds the instance's exit status and last output to err.
func (d *Driver) instanceError(in *instance, err error) error {
	if in.exited() {
		err = fmt.Errorf("%w (%v)", err, in.exitErr)
	}
	return fmt.Errorf("instance %s (pid %d, port %d): %w\nlast output:\n%s",
		in.id, in.pid, in.port, err, d.tail(in, 20))
}

// abandon stops every process of a pool that never became healthy and
// forgets the pool.
func (d *Driver) abandon(p *pool) {
	p.cancel()
	d.mu.Lock()
	slots := append([]*instance(nil), p.slots...)
	d.mu.Unlock()
	d.terminateAll(context.Background(), slots)
	d.mu.Lock()
	if d.pools[p.color] == p {
		d.pools[p.color] = nil
	}
	d.mu.Unlock()
	d.persist()
}

func (d *Driver) terminateAll(ctx context.Context, ins []*instance) {
	var wg sync.WaitGroup
	for _, in := range ins {
		if in != nil {
			wg.Go(func() { d.terminate(ctx, in) })
		}
	}
	wg.Wait()
}

// Stop stops colour c's pool: SIGTERM to every instance's process group,
// SIGKILL after the stop timeout (or when ctx is done), and returns once no
// process of the pool is left. The listener then sees an empty pool.
// Stopping a colour that runs nothing does nothing.
func (d *Driver) Stop(ctx context.Context, c route.Color) error {
	d.opMu[c].Lock()
	defer d.opMu[c].Unlock()
	d.mu.Lock()
	closed, p := d.closed, d.pools[c]
	d.mu.Unlock()
	if closed {
		return fmt.Errorf("service %s: stop %s: driver closed", d.name, c)
	}
	if p != nil {
		d.stopPool(ctx, p)
	}
	return nil
}

func (d *Driver) stopPool(ctx context.Context, p *pool) {
	p.cancel()
	p.wg.Wait()
	d.mu.Lock()
	slots := append([]*instance(nil), p.slots...)
	d.mu.Unlock()
	d.terminateAll(ctx, slots)
	d.mu.Lock()
	d.pools[p.color] = nil
	d.mu.Unlock()
	d.persist()
	d.report(p)
	d.log.Info("pool stopped", "color", p.color.String(), "version", p.version)
}

// Instances returns the healthy instances of colour c, by slot.
func (d *Driver) Instances(c route.Color) []runtime.Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.healthyLocked(d.pools[c])
}

func (d *Driver) healthyLocked(p *pool) []runtime.Instance {
	if p == nil {
		return nil
	}
	var out []runtime.Instance
	for _, in := range p.slots {
		if in != nil && in.healthy {
			out = append(out, in.public(d.name))
		}
	}
	return out
}

// report tells the listener the pool's current healthy instances (none once
// the pool is no longer the colour's pool).
func (d *Driver) report(p *pool) {
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	d.mu.Lock()
	var list []runtime.Instance
	if d.pools[p.color] == p {
		list = d.healthyLocked(p)
	}
	d.mu.Unlock()
	d.listener.Pool(p.color, p.version, list)
}

// Close stops supervising and log rotation but leaves every instance
// running and recorded, for the next daemon's Adopt. The driver cannot be
// used afterwards.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	pools := d.pools
	d.mu.Unlock()
	d.cancel()
	for _, p := range pools {
		if p != nil {
			p.wg.Wait()
		}
	}
	d.bg.Wait()
	d.gateNow().CloseIdle()
	return nil
}
