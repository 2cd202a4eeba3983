// Package apitest provides Backend, an in-memory api.Backend for tests of
// the API server, its client and the CLI, which cannot start a daemon. It
// holds canned state that tests set and records the calls it receives; it
// never reaches the cutover binary.
//
// A Backend is safe for concurrent use.
package apitest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

var _ api.Backend = (*Backend)(nil)

// Backend is an in-memory api.Backend. The zero value is not usable; call New.
type Backend struct {
	// OnDeploy, when set, is called by Deploy after the request passed the
	// backend's checks; it returns the deployment to answer with. Tests use
	// it to script a deployment (emitting events, changing status).
	OnDeploy func(service, version, strategy string) (deploy.Deployment, error)
	// OnDownUp, when set, is called by Down and Up (op "down" or "up")
	// after they marked the status, before the status is answered. Tests
	// use it to script the stop or start that follows.
	OnDownUp func(op, service string)

	metrics prometheus.Gatherer // set by New, then read-only

	mu       sync.Mutex
	statuses map[string]deploy.Status
	history  map[string][]deploy.Deployment
	logs     map[string]string
	errs     map[string]error
	calls    []string
	subs     map[chan deploy.Event]string
	logFeed  chan string
}

// New returns a Backend with the given services, each idle and live on blue
// at version v1.
func New(services ...string) *Backend {
	b := &Backend{
		statuses: map[string]deploy.Status{},
		history:  map[string][]deploy.Deployment{},
		logs:     map[string]string{},
		errs:     map[string]error{},
		subs:     map[chan deploy.Event]string{},
		logFeed:  make(chan string),
		metrics:  upRegistry(),
	}
	for _, s := range services {
		b.statuses[s] = deploy.Status{
			Service: s,
			Phase:   deploy.PhaseIdle,
			Live:    &deploy.PoolRef{Color: route.Blue, Version: "v1"},
			Weights: map[string]float64{"blue": 100, "green": 0},
		}
	}
	return b
}

// SetStatus replaces a service's status (adding the service if new).
func (b *Backend) SetStatus(st deploy.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.statuses[st.Service] = st
}

// SetHistory replaces a service's history (newest first).
func (b *Backend) SetHistory(service string, ds []deploy.Deployment) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.history[service] = ds
}

// SetLogs sets the captured output Logs writes for a service.
func (b *Backend) SetLogs(service, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logs[service] = text
}

// FeedLog hands a line to one following Logs call; it blocks until one
// takes it or ctx is done.
func (b *Backend) FeedLog(ctx context.Context, line string) error {
	select {
	case b.logFeed <- line:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetError makes the operation op ("status", "deploy", "promote", "pause",
// "resume", "abort", "rollback", "down", "up", "history", "logs", "register",
// "deregister", "subscribe", "reload") return err until cleared with nil.
func (b *Backend) SetError(op string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs[op] = err
}

// upRegistry is what /metrics serves: one gauge, cutover_up 1.
func upRegistry() *prometheus.Registry {
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cutover_up", Help: "Always 1: the fake backend answers."})
	up.Set(1)
	reg := prometheus.NewRegistry()
	reg.MustRegister(up)
	return reg
}

// Calls returns the state-changing calls received so far, each as
// "op service args...", in order.
func (b *Backend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// Subscribers returns the number of open event subscriptions.
func (b *Backend) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Emit sends ev to every subscriber of its service or of all services,
// dropping it for a subscriber whose buffer is full (as the daemon does).
func (b *Backend) Emit(ev deploy.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch, svc := range b.subs {
		if svc != "" && svc != ev.Service {
			continue
		}
		select {
		case ch <- ev:
		default:
		}
	}
}

// check records a call and returns the configured error of op, or
// api.ErrUnknownService for a service that does not exist.
func (b *Backend) check(op, service string, args ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if op != "status" && op != "history" && op != "logs" && op != "subscribe" {
		b.calls = append(b.calls, fmt.Sprint(append([]string{op, service}, args...)))
	}
	if err := b.errs[op]; err != nil {
		return err
	}
	if _, ok := b.statuses[service]; service != "" && !ok {
		return fmt.Errorf("%w %q", api.ErrUnknownService, service)
	}
	return nil
}

// Services implements api.Backend.
func (b *Backend) Services() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.statuses))
	for n := range b.statuses {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Status implements api.Backend.
func (b *Backend) Status(service string) (deploy.Status, error) {
	if err := b.check("status", service); err != nil {
		return deploy.Status{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.statuses[service], nil
}

// Deploy implements api.Backend: it answers a running deployment with
// api.ErrConflict, else calls OnDeploy or returns a running deployment "d1".
func (b *Backend) Deploy(ctx context.Context, service, version, strategy, actor string, env map[string]string) (deploy.Deployment, error) {
	if err := b.check("deploy", service, version, strategy, actor); err != nil {
		return deploy.Deployment{}, err
	}
	b.mu.Lock()
	running := b.statuses[service].Deployment != nil
	onDeploy := b.OnDeploy
	b.mu.Unlock()
	if running {
		return deploy.Deployment{}, fmt.Errorf("deploy %s %s: %w: a deployment is already running", service, version, api.ErrConflict)
	}
	if onDeploy != nil {
		return onDeploy(service, version, strategy)
	}
	return deploy.Deployment{ID: "d1", Service: service, Version: version, Strategy: strategy,
		Outcome: deploy.OutcomeRunning, Color: route.Green, Events: []deploy.Event{}}, nil
}

// Promote implements api.Backend.
func (b *Backend) Promote(ctx context.Context, service string) error {
	return b.check("promote", service)
}

// Pause implements api.Backend.
func (b *Backend) Pause(ctx context.Context, service string) error { return b.check("pause", service) }

// Resume implements api.Backend.
func (b *Backend) Resume(ctx context.Context, service string) error {
	return b.check("resume", service)
}

// Abort implements api.Backend.
func (b *Backend) Abort(ctx context.Context, service string) error { return b.check("abort", service) }

// Rollback implements api.Backend.
func (b *Backend) Rollback(ctx context.Context, service string) error {
	return b.check("rollback", service)
}

// Down implements api.Backend: it marks the service's status down.
func (b *Backend) Down(ctx context.Context, service string) error {
	if err := b.check("down", service); err != nil {
		return err
	}
	if f := b.setDown(service, true); f != nil {
		f("down", service)
	}
	return nil
}

// setDown marks the service's status and returns OnDownUp.
func (b *Backend) setDown(service string, down bool) func(op, service string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.statuses[service]
	st.Down = down
	b.statuses[service] = st
	return b.OnDownUp
}

// Up implements api.Backend: it marks the service's status up.
func (b *Backend) Up(ctx context.Context, service string) error {
	if err := b.check("up", service); err != nil {
		return err
	}
	if f := b.setDown(service, false); f != nil {
		f("up", service)
	}
	return nil
}

// History implements api.Backend.
func (b *Backend) History(service string, limit int) ([]deploy.Deployment, error) {
	if err := b.check("history", service); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ds := b.history[service]
	if limit > 0 && len(ds) > limit {
		ds = ds[:limit]
	}
	return slices.Clone(ds), nil
}

// Deployment implements api.Backend: the record with id among those set
// by SetHistory.
func (b *Backend) Deployment(service, id string) (deploy.Deployment, bool, error) {
	if err := b.check("deployment", service); err != nil {
		return deploy.Deployment{}, false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.history[service] {
		if d.ID == id {
			return d, true, nil
		}
	}
	return deploy.Deployment{}, false, nil
}

// Logs implements api.Backend: it writes the text set by SetLogs, then
// with follow each line given to FeedLog until ctx is done.
func (b *Backend) Logs(ctx context.Context, service string, color *route.Color, follow bool, w io.Writer) error {
	if err := b.check("logs", service); err != nil {
		return err
	}
	b.mu.Lock()
	text := b.logs[service]
	b.mu.Unlock()
	if color != nil {
		text = fmt.Sprintf("[%s] %s", color, text)
	}
	if _, err := io.WriteString(w, text); err != nil {
		return err
	}
	for follow {
		select {
		case <-ctx.Done():
			return nil
		case line := <-b.logFeed:
			if _, err := io.WriteString(w, line); err != nil {
				return err
			}
		}
	}
	return nil
}

// Register implements api.Backend.
func (b *Backend) Register(ctx context.Context, service, version, addr string) error {
	return b.check("register", service, version, addr)
}

// Deregister implements api.Backend.
func (b *Backend) Deregister(ctx context.Context, service, version, addr string) error {
	return b.check("deregister", service, version, addr)
}

// Subscribe implements api.Backend with a buffer of 64 events.
func (b *Backend) Subscribe(ctx context.Context, service string) (<-chan deploy.Event, error) {
	if err := b.check("subscribe", service); err != nil {
		return nil, err
	}
	ch := make(chan deploy.Event, 64)
	b.mu.Lock()
	b.subs[ch] = service
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, ch)
		close(ch)
	})
	return ch, nil
}

// Gatherer implements api.Backend: cutover_up 1.
func (b *Backend) Gatherer() prometheus.Gatherer { return b.metrics }

// Reload implements api.Backend.
func (b *Backend) Reload(ctx context.Context) error { return b.check("reload", "") }
