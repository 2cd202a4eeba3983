package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

var (
	_ runtime.Driver    = (*Driver)(nil)
	_ runtime.LogReader = (*Driver)(nil)
	_ runtime.Describer = (*Driver)(nil)
)

// Driver runs the pools of one service as containers. Create it with New,
// call Adopt once to take over what a previous daemon left running, then
// Start and Stop pools. Close leaves the containers running.
type Driver struct {
	name     string
	opts     Options
	log      *slog.Logger
	gate     *runtime.HealthGate
	listener runtime.Listener
	hosts    []*host

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	bg     sync.WaitGroup // removals of lost containers

	opMu     [2]sync.Mutex // serialises Start/Stop per colour
	notifyMu sync.Mutex    // serialises Listener calls

	mu     sync.Mutex // guards the fields below and every instance's mutable fields
	pools  [2]*pool
	closed bool
}

// pool is the running pool of one colour.
type pool struct {
	color   route.Color
	version string
	image   string
	env     map[string]string // the release's own environment
	slots   []*instance       // index slot-1; nil while a slot waits for a replacement
	exits   runtime.Exits
	failed  error
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New checks the options and opens a client per host. It connects to no
// engine yet.
func New(opts Options) (*Driver, error) {
	if opts.Service == "" {
		return nil, errors.New("docker runtime: no service name")
	}
	if opts.Image == "" {
		return nil, fmt.Errorf("service %s: docker runtime: no image", opts.Service)
	}
	if opts.Port <= 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("service %s: docker runtime: port %d is not a TCP port", opts.Service, opts.Port)
	}
	switch opts.Pull {
	case "", PullAlways, PullMissing, PullNever:
	default:
		return nil, fmt.Errorf("service %s: docker runtime: pull %q must be always, missing or never", opts.Service, opts.Pull)
	}
	for name, sec := range opts.Secrets {
		if (sec.File == "") == (sec.Env == "") {
			return nil, fmt.Errorf("service %s: docker runtime: secret %s needs exactly one of file and env", opts.Service, name)
		}
	}
	opts.defaults()
	d := &Driver{name: opts.Service, opts: opts, log: opts.Logger.With("service", opts.Service),
		gate: runtime.NewGate(opts.Gate), listener: opts.Listener}
	for _, hn := range hostNames(opts.Hosts) {
		h, err := openHost(hn)
		if err != nil {
			d.closeHosts()
			return nil, fmt.Errorf("service %s: docker runtime: %w", opts.Service, err)
		}
		d.hosts = append(d.hosts, h)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

func (d *Driver) closeHosts() {
	for _, h := range d.hosts {
		h.cli.Close()
	}
}

// image is the image reference of a version.
func (d *Driver) image(version string) string {
	return substitute(d.opts.Image, map[string]string{"VERSION": version, "SERVICE": d.name})
}

// Start runs Options.Instances containers of the release's image in
// colour c and returns once each passed its health gate. Every host is
// pinged first, and the image made present on each (Options.Pull). A
// colour that runs the same release is returned as it is; one that runs
// another is stopped first. On failure every container Start made is
// removed; the other colour is never touched.
func (d *Driver) Start(ctx context.Context, c route.Color, rel runtime.Release) ([]runtime.Instance, error) {
	d.opMu[c].Lock()
	defer d.opMu[c].Unlock()
	d.mu.Lock()
	closed, p := d.closed, d.pools[c]
	same := p != nil && p.version == rel.Version && maps.Equal(p.env, rel.Env) && p.failed == nil
	d.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("service %s: start %s %s: driver closed", d.name, c, rel.Version)
	}
	if same {
		return d.Instances(c), nil
	}
	if p != nil {
		d.stopPool(ctx, p)
	}
	if err := d.startPool(ctx, c, rel); err != nil {
		return nil, fmt.Errorf("service %s: start %s %s: %w", d.name, c, rel.Version, err)
	}
	return d.Instances(c), nil
}

// checkHosts pings every host at once; its error names each that did not
// answer.
func (d *Driver) checkHosts(ctx context.Context) error {
	errs := make([]error, len(d.hosts))
	var wg sync.WaitGroup
	for i, h := range d.hosts {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, d.opts.PingTimeout)
			defer cancel()
			errs[i] = h.ping(pctx)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// slotHost is the host a slot runs on when every host answers.
func (d *Driver) slotHost(slot int) *host { return d.hosts[(slot-1)%len(d.hosts)] }

func (d *Driver) startPool(ctx context.Context, c route.Color, rel runtime.Release) error {
	if err := d.checkHosts(ctx); err != nil {
		return err
	}
	if err := d.removeStrays(ctx, c); err != nil {
		return err
	}
	img := d.image(rel.Version)
	used := map[*host]bool{}
	for slot := 1; slot <= d.opts.Instances; slot++ {
		used[d.slotHost(slot)] = true
	}
	pctx, cancel := context.WithTimeout(ctx, d.opts.StartTimeout)
	err := d.ensureImages(pctx, img, used)
	cancel()
	if err != nil {
		return err
	}
	p := &pool{color: c, version: rel.Version, image: img, env: rel.Env, slots: make([]*instance, d.opts.Instances)}
	p.ctx, p.cancel = context.WithCancel(d.ctx)
	errs := make([]error, d.opts.Instances)
	var wg sync.WaitGroup
	for slot := 1; slot <= d.opts.Instances; slot++ {
		wg.Go(func() {
			in, err := d.startSlot(ctx, p, slot, d.slotHost(slot))
			if err != nil {
				errs[slot-1] = err
				return
			}
			d.mu.Lock()
			in.healthy = true
			p.slots[slot-1] = in
			d.mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.cancel()
		d.removeAll(context.WithoutCancel(ctx), p.slots)
		return err
	}
	d.mu.Lock()
	d.pools[c] = p
	d.mu.Unlock()
	d.log.Info("pool started", "color", c.String(), "version", rel.Version, "image", img, "instances", len(p.slots))
	d.report(p)
	d.supervise(p)
	return nil
}

// startSlot runs a slot's container and gates it, starting it again with
// backoff when it exits before it is healthy, up to CrashLoopRestarts
// times within the start timeout.
func (d *Driver) startSlot(ctx context.Context, p *pool, slot int, h *host) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.StartTimeout)
	defer cancel()
	backoff := d.opts.RestartBackoff
	var last error
	for attempt := 0; attempt <= d.opts.CrashLoopRestarts; attempt++ {
		in, err := d.launch(ctx, p, slot, h)
		if err == nil {
			if err = d.waitHealthy(ctx, in); err == nil {
				return in, nil
			}
			err = fmt.Errorf("%w\nlast output:\n%s", err, d.tail(context.WithoutCancel(ctx), in, 20))
			d.remove(context.WithoutCancel(ctx), in)
		}
		last = err
		var ex *exitedError
		if !errors.As(err, &ex) || ctx.Err() != nil {
			break // only an early exit is worth another try
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, d.opts.MaxRestartBackoff)
	}
	return nil, fmt.Errorf("instance %s: %w", instanceID(d.name, p.color, slot), last)
}

func (d *Driver) removeAll(ctx context.Context, ins []*instance) {
	var wg sync.WaitGroup
	for _, in := range ins {
		if in != nil {
			wg.Go(func() { d.stopContainer(ctx, in) })
		}
	}
	wg.Wait()
}

// Stop stops colour c's pool: SIGTERM to every container, the engine's
// SIGKILL after StopTimeout, then removal. Stopping a colour that runs
// nothing does nothing.
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
	d.pools[p.color] = nil
	d.mu.Unlock()
	d.report(p)
	d.removeAll(ctx, slots)
	// Containers of the colour the pool does not hold (a replacement whose
	// create was cut short by the stop, or one left on a host that did not
	// answer at Adopt) would otherwise keep running until the colour's
	// next Start.
	if err := d.removeStrays(ctx, p.color); err != nil {
		d.log.Warn("removing the stopped pool's stray containers", "color", p.color.String(), "err", err)
	}
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
			out = append(out, in.public(d.name, p))
		}
	}
	return out
}

// report tells the listener the pool's current healthy instances.
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

// Close stops supervising but leaves every container running, for the
// next daemon's Adopt.
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
	d.gate.CloseIdle()
	d.closeHosts()
	return nil
}
