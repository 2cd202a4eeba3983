package runtime

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/cutover/cutover/internal/health"
)

// GatePollInterval is how often WaitHealthy probes an instance that is not
// healthy yet. The first retries come sooner (from 10ms, doubling), since
// most instances are ready within tens of milliseconds.
const GatePollInterval = 50 * time.Millisecond

// HealthGate probes new instances of one service until they answer their
// health check. Drivers share it so that every runtime gates the same way.
// It is safe for concurrent use.
type HealthGate struct {
	client  *http.Client
	scheme  string
	path    string
	timeout time.Duration
}

// The gate's defaults for zero GateOptions fields.
const (
	DefaultHealthPath   = health.DefaultPath
	DefaultProbeTimeout = health.DefaultTimeout
)

// GateOptions configure a HealthGate.
type GateOptions struct {
	// Path is the health check's path; default DefaultHealthPath.
	Path string
	// Timeout bounds each probe; default DefaultProbeTimeout.
	Timeout time.Duration
	// TLS, when set, makes the gate probe over HTTPS with this client
	// configuration (the one the router uses towards instances).
	TLS *tls.Config
}

// NewGate builds a gate from o.
func NewGate(o GateOptions) *HealthGate {
	g := &HealthGate{scheme: "http", path: o.Path, timeout: o.Timeout}
	if g.path == "" {
		g.path = DefaultHealthPath
	}
	if g.timeout <= 0 {
		g.timeout = DefaultProbeTimeout
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 5 * time.Second, DisableKeepAlives: true}
	if o.TLS != nil {
		g.scheme = "https"
		tr.TLSClientConfig = o.TLS.Clone()
	}
	g.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return g
}

// URL returns the health check URL of an instance at addr.
func (g *HealthGate) URL(addr string) string { return g.scheme + "://" + addr + g.path }

// Check probes addr once, bounded by the service's health timeout.
func (g *HealthGate) Check(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	return health.Probe(ctx, g.client, g.URL(addr))
}

// WaitHealthy probes addr every GatePollInterval until a probe passes, ctx is
// done (the caller's start timeout), or abort is closed (the instance
// exited). It returns nil once healthy, otherwise a *NotHealthyError with
// the last probe's error and the reason it gave up.
func (g *HealthGate) WaitHealthy(ctx context.Context, addr string, abort <-chan struct{}) error {
	return g.WaitHealthyEvery(ctx, addr, abort, GatePollInterval)
}

// WaitHealthyEvery is WaitHealthy with the retries spaced up to every
// instead of GatePollInterval, for gates that run in the background and
// may wait a long time for an address that is down.
func (g *HealthGate) WaitHealthyEvery(ctx context.Context, addr string, abort <-chan struct{}, every time.Duration) error {
	every = max(every, 10*time.Millisecond)
	delay := 10 * time.Millisecond
	t := time.NewTimer(delay)
	defer t.Stop()
	var last error
	for {
		err := g.Check(ctx, addr)
		if err == nil {
			return nil
		}
		// A probe cut short by the deadline says less than the one before.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return &NotHealthyError{LastProbe: last, Cause: context.Cause(ctx)}
		case <-abort:
			return &NotHealthyError{LastProbe: last, Exited: true}
		case <-t.C:
		}
		delay = min(2*delay, every)
		t.Reset(delay)
	}
}

// NotHealthyError is WaitHealthy's error: the last probe's failure, and
// why the gate stopped waiting (Cause, the context's; or Exited, when the
// instance exited).
type NotHealthyError struct {
	LastProbe error
	Cause     error
	Exited    bool
}

func (e *NotHealthyError) Error() string {
	if e.Exited {
		return fmt.Sprintf("exited before it was healthy (last probe: %v)", e.LastProbe)
	}
	return fmt.Sprintf("not healthy in time (last probe: %v): %v", e.LastProbe, e.Cause)
}

// Unwrap returns Cause.
func (e *NotHealthyError) Unwrap() error { return e.Cause }

// CloseIdle releases the gate's idle connections.
func (g *HealthGate) CloseIdle() { g.client.CloseIdleConnections() }
