// Package static is the runtime driver for instances that something else
// runs: a fixed list of addresses per version from the config, plus
// addresses registered at run time (for example by an external
// autoscaler). Stopping a colour only forgets its addresses.
//
// # Health gate
//
// Start waits until every address of the version passes its health check,
// or until the start timeout passes. When none passed, Start fails with an
// error naming each address and why. When some passed, the colour serves
// those: an operator with ten addresses of which one is down would rather
// deploy to nine than not at all. The addresses that failed are logged and
// probed in the background for as long as a colour serves the version; each
// joins the pool when it becomes healthy.
//
// Register records an address at once, but it joins a running pool only
// once it passes the same gate, probed in the background within the start
// timeout, since the router takes a new backend for healthy at once.
//
// Restore, for a daemon restart, reports every address at once without
// gating: the pool was gated when it was deployed, and the router's own
// active health checks and passive ejection take out any address that died
// since, whereas gating again would let one dead address keep the whole
// service down. The exception is an address registered that has never been
// in a pool (so never passed a health check): it is probed in the
// background as Register does.
//
// # Persistence
//
// With a Store, the driver persists what run-time registrations changed
// relative to the configured versions, so that what the API acknowledged
// survives a restart: RestoreRegistrations applies it at start-up, on top
// of the configuration, which stays in charge of everything registrations
// did not touch. Register and Deregister persist before they return, and
// undo the change when persisting fails. The stored value is JSON, schema
// 2: {"schema":2,"added":{version:[addr]},"removed":{...},"healthy":{...}};
// a value in the first format (the whole address map, version -> addresses)
// is read as the addresses it has beyond the configuration.
//
// "healthy" names the registered addresses that have been in a pool, so
// passed a health check; Restore takes those at once. They are recorded in
// memory, under the driver's lock, where the driver adds an address to a
// pool, and persisted by that same driver path (Start, or the background
// probe that admitted the address) once its Listener call has returned and
// with none of the driver's locks held. So no store write happens inside a
// Listener call, a slow store never holds up the router's view of a pool,
// and a probe's write is finished when Close returns. Writes are serialised
// and each carries the state at the time it is made, so the last one is
// never stale. A failure to persist the healthy set is logged: such an
// address is then only probed before it joins a pool after a restart.
//
// # Concurrency
//
// A Driver is safe for concurrent use. Start, Restore and Stop of one colour
// are serialised; Listener calls are serialised and carry the state at the
// time of the call. Register and Deregister are serialised with their
// persistence. Background probes are owned by the driver and stopped by
// Close.
package static

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

var (
	_ runtime.Driver    = (*Driver)(nil)
	_ runtime.Registrar = (*Driver)(nil)
)

// Options configure a Driver. Service is required; a nil Listener
// discards reports, a nil Logger discards logs and a nil Store keeps
// registrations in memory only.
type Options struct {
	// Service is the name of the service the addresses serve.
	Service string
	// Versions are the configured addresses per version
	// (runtime.static.versions); registrations are a difference from them.
	Versions map[string][]string
	// Gate is how addresses are health-checked before they join a pool.
	Gate runtime.GateOptions
	// ProbeEvery spaces the retries of background probes of addresses
	// that are down (the service's health check interval); default
	// DefaultProbeEvery.
	ProbeEvery time.Duration
	Listener   runtime.Listener
	Logger     *slog.Logger
	Store      Store
	// StartTimeout bounds how long Start waits for every address to pass
	// its health check; default DefaultStartTimeout.
	StartTimeout time.Duration
}

// The driver's defaults for zero Options fields.
const (
	DefaultProbeEvery   = time.Second
	DefaultStartTimeout = time.Minute
)

// Driver serves the pools of one service from known addresses.
type Driver struct {
	name     string // the service's
	gate     *runtime.HealthGate
	listener runtime.Listener
	log      *slog.Logger
	store    Store // nil: registrations are not persisted
	timeout  time.Duration
	// configured is runtime.static.versions as the driver was built with
	// it: what registrations are a difference from.
	configured map[string][]string
	// probeEvery spaces the retries of background probes: the service's
	// health check interval.
	probeEvery time.Duration

	ctx    context.Context // lives until Close; parent of every probe
	cancel context.CancelFunc
	bg     sync.WaitGroup // probes

	// Lock order: opMu[c] or regMu, then persistMu or notifyMu, then mu.
	// persistMu and notifyMu are never held together: a Listener call never
	// waits on the store, and a store write never waits on a Listener.
	opMu      [2]sync.Mutex // serialises Start/Stop per colour
	regMu     sync.Mutex    // serialises Register/Deregister with their persistence
	persistMu sync.Mutex    // serialises store writes
	notifyMu  sync.Mutex    // serialises Listener calls

	mu       sync.Mutex
	versions map[string][]string // version -> addresses, config plus registrations
	pools    [2]*pool
	probes   map[probeKey]*probe // addresses waiting to join their version's pools
	closed   bool
	// healthy holds the registered addresses (not configured) that have
	// been in a pool; healthyDirty is set when it grew since the last write.
	healthy      map[string][]string
	healthyDirty bool
}

// pool is what a colour runs: a version and its instances.
type pool struct {
	version   string
	instances []runtime.Instance
	next      int // number for the next instance's ID
}

// New builds the driver from Service.Runtime.Static. It contacts nothing.
func New(opts Options) (*Driver, error) {
	if opts.Service == "" {
		return nil, errors.New("static runtime: no service name")
	}
	d := &Driver{
		name: opts.Service, gate: runtime.NewGate(opts.Gate), listener: opts.Listener, log: opts.Logger, store: opts.Store,
		timeout: opts.StartTimeout, probeEvery: opts.ProbeEvery,
		configured: make(map[string][]string),
		versions:   make(map[string][]string), probes: make(map[probeKey]*probe),
	}
	if d.listener == nil {
		d.listener = discard{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("service", opts.Service)
	if d.timeout <= 0 {
		d.timeout = DefaultStartTimeout
	}
	if d.probeEvery <= 0 {
		d.probeEvery = DefaultProbeEvery
	}
	for v, addrs := range opts.Versions {
		for _, a := range addrs {
			if err := checkAddr(a); err != nil {
				return nil, fmt.Errorf("service %s: static runtime: version %s: %w", opts.Service, v, err)
			}
		}
		d.versions[v] = slices.Clone(addrs)
		d.configured[v] = slices.Clone(addrs)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

type discard struct{}

func (discard) Pool(route.Color, string, []runtime.Instance) {}
func (discard) Failed(route.Color, string, error)            {}

func checkAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	return nil
}

// Start makes colour c serve version's addresses that pass their health
// check: it waits until every one has passed or the start timeout has
// passed, then serves those that did and probes the others in the
// background (see the package comment). A colour that already serves the
// version is returned as it is. Registered addresses it serves are
// persisted as healthy before it returns. A version without addresses, or
// one none of whose addresses passed, fails with an error naming service,
// colour, version and each address; the colour is then left as it was.
func (d *Driver) Start(ctx context.Context, c route.Color, rel runtime.Release) ([]runtime.Instance, error) {
	version := rel.Version
	if len(rel.Env) > 0 {
		return nil, fmt.Errorf("service %s: start %s %s: the static runtime cannot give its instances an environment (deploy --env); "+
			"they are started elsewhere", d.name, c, version)
	}
	d.opMu[c].Lock()
	defer d.opMu[c].Unlock()
	addrs, serving, err := d.begin(c, version, "start", "starting")
	if err != nil || serving {
		return d.instancesOrNil(c, err)
	}
	healthy, failed := d.gateAll(ctx, addrs)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("service %s: start %s %s: %w", d.name, c, version, context.Cause(ctx))
	}
	p := &pool{version: version}
	d.mu.Lock()
	for _, a := range healthy {
		if slices.Contains(d.versions[version], a) { // not deregistered while gating
			d.joinLocked(p, c, a)
		}
	}
	if len(p.instances) == 0 {
		d.mu.Unlock()
		why := errors.Join(failed...)
		if why == nil {
			why = errors.New("every address that passed was deregistered meanwhile")
		}
		return nil, fmt.Errorf("service %s: start %s %s: no address is healthy: %w", d.name, c, version, why)
	}
	// Once installed, background probes may add to p under d.mu: count it
	// before letting go.
	d.install(c, p)
	n := len(p.instances)
	d.mu.Unlock()
	for _, err := range failed {
		d.log.Warn("address not healthy; starting without it and probing it in the background",
			"color", c.String(), "version", version, "err", err)
	}
	d.log.Info("pool healthy", "color", c.String(), "version", version,
		"instances", n, "unhealthy", len(failed))
	d.report(c)
	d.flushHealthy()
	return d.Instances(c), nil
}

// install makes p colour c's pool, starts probes for the addresses of its
// version that it lacks and stops those of versions no colour runs any
// more. The caller holds d.mu.
func (d *Driver) install(c route.Color, p *pool) {
	d.pools[c] = p
	d.admitMissingLocked(c, p.version)
	d.pruneProbesLocked()
}

// begin is the common opening of Start and Restore, called with the
// colour's operation lock held: it returns the version's addresses, or
// serving=true when the colour already serves the version. op and doing
// name the operation in errors ("start", "starting").
func (d *Driver) begin(c route.Color, version, op, doing string) (addrs []string, serving bool, err error) {
	d.mu.Lock()
	closed, cur, addrs := d.closed, d.pools[c], slices.Clone(d.versions[version])
	d.mu.Unlock()
	switch {
	case closed:
		return nil, false, fmt.Errorf("service %s: %s %s %s: driver closed", d.name, op, c, version)
	case cur != nil && cur.version == version:
		return nil, true, nil
	case len(addrs) == 0:
		return nil, false, fmt.Errorf("service %s: static runtime has no addresses for version %s (%s %s)",
			d.name, version, doing, c)
	}
	return addrs, false, nil
}

// instancesOrNil returns err, or the colour's instances when there is none.
func (d *Driver) instancesOrNil(c route.Color, err error) ([]runtime.Instance, error) {
	if err != nil {
		return nil, err
	}
	return d.Instances(c), nil
}

// Restore re-establishes colour c's pool of version after a daemon restart,
// without health-gating: the pool was gated when it was first deployed, and
// gating again would let one dead address keep the whole pool (and so the
// service) down. Every address of the version joins the pool and the
// listener sees it at once, except registered addresses that have never
// been in a pool (so never passed a health check; see RestoreRegistrations),
// which are probed in the background like the addresses a started pool
// lacks and join once they pass. Addresses that are down are left to the
// router's active health checks and passive ejection. A colour that
// already serves the version is returned as it is. Only a version without
// any address is an error.
func (d *Driver) Restore(c route.Color, version string) ([]runtime.Instance, error) {
	d.opMu[c].Lock()
	defer d.opMu[c].Unlock()
	addrs, serving, err := d.begin(c, version, "restore", "restoring")
	if err != nil || serving {
		return d.instancesOrNil(c, err)
	}
	p := &pool{version: version}
	d.mu.Lock()
	unproven := d.unprovenLocked(version)
	for _, a := range addrs {
		if !slices.Contains(unproven, a) {
			d.joinLocked(p, c, a)
		}
	}
	d.install(c, p) // from here background probes may add to p under d.mu
	n := len(p.instances)
	d.mu.Unlock()
	d.log.Info("pool restored without health gate", "color", c.String(), "version", version,
		"instances", n, "probing", len(addrs)-n)
	d.report(c)
	d.flushHealthy()
	return d.Instances(c), nil
}

func (p *pool) add(service string, c route.Color, version, addr string) {
	p.next++
	p.instances = append(p.instances, runtime.Instance{
		ID: fmt.Sprintf("%s-%s-%d", service, c, p.next), Service: service, Color: c,
		Version: version, Addr: addr, StartedAt: time.Now(),
	})
}

// gateAll waits until every address is healthy or the start timeout has
// passed. It returns the addresses that passed, in order, and an error per
// address that did not.
func (d *Driver) gateAll(ctx context.Context, addrs []string) (healthy []string, failed []error) {
	ctx, cancel := context.WithTimeoutCause(ctx, d.timeout, fmt.Errorf("start timeout %s passed", d.timeout))
	defer cancel()
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			if err := d.gate.WaitHealthy(ctx, a, nil); err != nil {
				errs[i] = fmt.Errorf("address %s: %w", a, err)
			}
		})
	}
	wg.Wait()
	for i, a := range addrs {
		if errs[i] == nil {
			healthy = append(healthy, a)
		} else {
			failed = append(failed, errs[i])
		}
	}
	return healthy, failed
}

// Stop forgets colour c's pool and reports it empty. The instances
// themselves are not touched.
func (d *Driver) Stop(ctx context.Context, c route.Color) error {
	d.opMu[c].Lock()
	defer d.opMu[c].Unlock()
	d.mu.Lock()
	p := d.pools[c]
	d.pools[c] = nil
	d.pruneProbesLocked()
	d.mu.Unlock()
	if p != nil {
		d.notifyMu.Lock()
		d.listener.Pool(c, p.version, nil)
		d.notifyMu.Unlock()
	}
	return nil
}

// Instances returns colour c's instances (those that passed the start gate
// and those added since).
func (d *Driver) Instances(c route.Color) []runtime.Instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.pools[c]; p != nil {
		return slices.Clone(p.instances)
	}
	return nil
}

// Close marks the driver closed, so later Starts fail, and stops its
// background probes. The pools and their addresses are not touched.
func (d *Driver) Close() error {
	d.mu.Lock()
	d.closed = true
	for k, pr := range d.probes {
		pr.cancel()
		delete(d.probes, k)
	}
	d.mu.Unlock()
	d.cancel()
	d.bg.Wait()
	d.gate.CloseIdle()
	return nil
}

// register is Register without persistence.
func (d *Driver) register(version, addr string) error {
	if err := checkAddr(addr); err != nil {
		return fmt.Errorf("service %s: register %s: %w", d.name, version, err)
	}
	d.mu.Lock()
	if slices.Contains(d.versions[version], addr) {
		d.mu.Unlock()
		return nil
	}
	d.versions[version] = append(d.versions[version], addr)
	running := len(d.colorsRunning(version)) > 0
	if running {
		d.admitLocked(version, addr, d.timeout)
	}
	d.mu.Unlock()
	d.log.Info("address registered", "version", version, "addr", addr, "gating", running)
	return nil
}

// deregister is Deregister without persistence.
func (d *Driver) deregister(version, addr string) error {
	d.mu.Lock()
	i := slices.Index(d.versions[version], addr)
	if i < 0 {
		d.mu.Unlock()
		return fmt.Errorf("service %s: deregister %s: address %s is not registered", d.name, version, addr)
	}
	d.versions[version] = slices.Delete(d.versions[version], i, i+1)
	d.cancelProbeLocked(version, addr)
	changed := d.colorsRunning(version)
	for _, c := range changed {
		p := d.pools[c]
		p.instances = slices.DeleteFunc(p.instances, func(in runtime.Instance) bool { return in.Addr == addr })
	}
	d.mu.Unlock()
	d.log.Info("address deregistered", "version", version, "addr", addr)
	for _, c := range changed {
		d.report(c)
	}
	return nil
}

// Versions returns every version with at least one address, and its
// addresses.
func (d *Driver) Versions() map[string][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string][]string, len(d.versions))
	for v, addrs := range maps.All(d.versions) {
		if len(addrs) > 0 {
			out[v] = slices.Clone(addrs)
		}
	}
	return out
}

func (d *Driver) colorsRunning(version string) []route.Color {
	var out []route.Color
	for _, c := range route.Colors {
		if p := d.pools[c]; p != nil && p.version == version {
			out = append(out, c)
		}
	}
	return out
}

// report sends colour c's current pool to the listener.
func (d *Driver) report(c route.Color) {
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	d.mu.Lock()
	p := d.pools[c]
	if p == nil {
		d.mu.Unlock()
		return
	}
	version, list := p.version, slices.Clone(p.instances)
	d.mu.Unlock()
	d.listener.Pool(c, version, list)
}
