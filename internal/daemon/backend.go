package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/proxy"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// The Daemon is the API's backend.
var _ api.Backend = (*Daemon)(nil)

// classified keeps an error's own message while letting errors.Is find the
// API sentinel that picks its status code.
type classified struct{ err, kind error }

func (c classified) Error() string   { return c.err.Error() }
func (c classified) Unwrap() []error { return []error{c.err, c.kind} }

// classify maps the controller's and runtime's errors to API sentinels.
func classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, deploy.ErrBusy), errors.Is(err, deploy.ErrNoDeployment), errors.Is(err, deploy.ErrNoPrevious),
		errors.Is(err, deploy.ErrDown), errors.Is(err, deploy.ErrNotDown):
		return classified{err, api.ErrConflict}
	case errors.Is(err, deploy.ErrInvalid):
		return classified{err, api.ErrInvalid}
	case errors.Is(err, runtime.ErrNotSupported):
		return classified{err, api.ErrNotSupported}
	}
	return err
}

func (d *Daemon) service(name string) (*service, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	svc, ok := d.services[name]
	if !ok {
		return nil, classified{fmt.Errorf("service %q is not configured", name), api.ErrUnknownService}
	}
	return svc, nil
}

// Services implements api.Backend.
func (d *Daemon) Services() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.services))
	for n := range d.services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Status implements api.Backend.
func (d *Daemon) Status(name string) (deploy.Status, error) {
	svc, err := d.service(name)
	if err != nil {
		return deploy.Status{}, err
	}
	st := svc.ctrl.Status()
	st.Notices = svc.notices
	return st, nil
}

// Deploy implements api.Backend.
func (d *Daemon) Deploy(ctx context.Context, name, version, strategy, actor string, env map[string]string) (deploy.Deployment, error) {
	svc, err := d.service(name)
	if err != nil {
		return deploy.Deployment{}, err
	}
	if err := checkDrift(ctx, svc, version); err != nil {
		return deploy.Deployment{}, err
	}
	undo := svc.noteAllowDrift(ctx, version)
	dep, err := svc.ctrl.Deploy(ctx, version, strategy, actor, env)
	if err != nil {
		undo() // a refused deployment leaves the running one's note
	}
	return dep, classify(err)
}

func (d *Daemon) control(name string, op func(*deploy.Controller) error) error {
	svc, err := d.service(name)
	if err != nil {
		return err
	}
	return classify(op(svc.ctrl))
}

// Promote implements api.Backend.
func (d *Daemon) Promote(ctx context.Context, name string) error {
	return d.control(name, func(c *deploy.Controller) error { return c.Promote(ctx) })
}

// Pause implements api.Backend.
func (d *Daemon) Pause(ctx context.Context, name string) error {
	return d.control(name, func(c *deploy.Controller) error { return c.Pause(ctx) })
}

// Resume implements api.Backend.
func (d *Daemon) Resume(ctx context.Context, name string) error {
	return d.control(name, func(c *deploy.Controller) error { return c.Resume(ctx) })
}

// Abort implements api.Backend.
func (d *Daemon) Abort(ctx context.Context, name string) error {
	return d.control(name, func(c *deploy.Controller) error { return c.Abort(ctx) })
}

// Rollback implements api.Backend.
func (d *Daemon) Rollback(ctx context.Context, name string) error {
	return d.control(name, func(c *deploy.Controller) error { return c.Rollback(ctx) })
}

// Down implements api.Backend.
func (d *Daemon) Down(ctx context.Context, name string) error {
	return d.control(name, func(c *deploy.Controller) error { return c.Down(ctx, api.ActorUser) })
}

// Up implements api.Backend.
func (d *Daemon) Up(ctx context.Context, name string) error {
	return d.control(name, func(c *deploy.Controller) error { return c.Up(ctx, api.ActorUser) })
}

// History implements api.Backend.
func (d *Daemon) History(name string, limit int) ([]deploy.Deployment, error) {
	svc, err := d.service(name)
	if err != nil {
		return nil, err
	}
	h, err := svc.ctrl.History(limit)
	return h, classify(err)
}

// Deployment implements api.Backend: one history record, read by id.
func (d *Daemon) Deployment(name, id string) (deploy.Deployment, bool, error) {
	svc, err := d.service(name)
	if err != nil {
		return deploy.Deployment{}, false, err
	}
	dep, found, err := svc.ctrl.Deployment(id)
	return dep, found, classify(err)
}

// Logs implements api.Backend.
func (d *Daemon) Logs(ctx context.Context, name string, color *route.Color, follow bool, w io.Writer) error {
	svc, err := d.service(name)
	if err != nil {
		return err
	}
	lr, ok := svc.driver.(runtime.LogReader)
	if !ok {
		return classified{fmt.Errorf("service %s: its runtime keeps no instance output", name), api.ErrNotSupported}
	}
	return lr.Logs(ctx, color, follow, w)
}

// registrar is the service's runtime when it takes run-time registrations.
func (d *Daemon) registrar(name string) (runtime.Registrar, error) {
	svc, err := d.service(name)
	if err != nil {
		return nil, err
	}
	reg, ok := svc.driver.(runtime.Registrar)
	if !ok {
		return nil, classified{fmt.Errorf("service %s: instances can be registered only with runtime.static", name), api.ErrNotSupported}
	}
	return reg, nil
}

// Register implements api.Backend. The runtime persists the change before
// the call returns (see package runtime/static).
func (d *Daemon) Register(_ context.Context, name, version, addr string) error {
	reg, err := d.registrar(name)
	if err != nil {
		return err
	}
	return classify(reg.Register(version, addr))
}

// Deregister implements api.Backend. The runtime persists the change
// before the call returns (see package runtime/static).
func (d *Daemon) Deregister(_ context.Context, name, version, addr string) error {
	reg, err := d.registrar(name)
	if err != nil {
		return err
	}
	return classify(reg.Deregister(version, addr))
}

// Subscribe implements api.Backend.
func (d *Daemon) Subscribe(ctx context.Context, name string) (<-chan deploy.Event, error) {
	if name != "" {
		if _, err := d.service(name); err != nil {
			return nil, err
		}
	}
	return d.events.subscribe(ctx, name), nil
}

// outcomes counts finished deployments by service and outcome for
// /metrics, from the controllers' final records (deploy.Options.Finished),
// which each deployment reaches once.
type outcomes struct {
	mu sync.Mutex
	n  map[[2]string]uint64
}

func (o *outcomes) finished(dep deploy.Deployment) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[[2]string]uint64{}
	}
	o.n[[2]string{dep.Service, string(dep.Outcome)}]++
}

// deploymentsDesc describes the series of outcomes.
var deploymentsDesc = prometheus.NewDesc("cutover_deployments_total", "Finished deployments by outcome.",
	[]string{"service", "outcome"}, nil)

// Describe implements prometheus.Collector.
func (o *outcomes) Describe(ch chan<- *prometheus.Desc) { ch <- deploymentsDesc }

// Collect implements prometheus.Collector.
func (o *outcomes) Collect(ch chan<- prometheus.Metric) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, n := range o.n {
		ch <- prometheus.MustNewConstMetric(deploymentsDesc, prometheus.CounterValue, float64(n), k[0], k[1])
	}
}

// newMetrics builds the registry /metrics serves: the Go runtime's and the
// process's series, every router's (which include cutover_weight_percent,
// the split the router applies), and the deployments by outcome. The
// collectors read their figures at each scrape, never on the request path.
func (d *Daemon) newMetrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		proxy.NewCollector(d.routers),
		&d.done,
	)
	return reg
}

// routers returns the routers of the services started so far.
func (d *Daemon) routers() []*proxy.Router {
	d.mu.Lock()
	defer d.mu.Unlock()
	rs := make([]*proxy.Router, 0, len(d.services))
	for _, svc := range d.services {
		rs = append(rs, svc.router)
	}
	return rs
}

// Gatherer implements api.Backend.
func (d *Daemon) Gatherer() prometheus.Gatherer { return d.metrics }
