// Package proxy is cutover's data plane: one Router per service forwards
// public and preview traffic to the instances of the blue and green pools,
// split by the candidate weight with sticky buckets, balanced within a pool
// by least outstanding requests, checked actively and ejected passively,
// drained with a deadline, and counted per colour.
//
// Concurrency: a Router is safe for concurrent use. The request path reads
// the routing table through an atomic pointer and per-instance state through
// atomics; it never takes the control mutex that SetPool, SetSplit,
// SetPreview, Drain and Undrain hold while they build and publish a new table. A
// weight change is one pointer swap. The Router owns one health-watch goroutine per instance and
// one goroutine per instance being drained; Close stops them all.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// Backend is one instance as the control plane hands it to the router.
type Backend struct {
	// ID is stable for the life of the instance; the router keeps an
	// instance's live state (in flight, health) across SetPool calls by ID.
	ID string
	// Addr is the host:port requests are forwarded to.
	Addr string
}

// ejectFor is how long a connection failure takes an instance out of
// selection, unless its active health check passes sooner.
const ejectFor = 5 * time.Second

// stickyMaxAge is how long a browser keeps the sticky cookie. A session
// cookie would be lost when the browser restarts, and with it the client's
// colour in the middle of a canary; a day outlasts a shift's steps while
// letting go of a bucket nobody uses. The router sets the cookie only when
// a request has none, so a client keeps its colour for a day at most and
// is then split afresh.
const stickyMaxAge = 24 * time.Hour

// Router forwards one service's traffic. Create it with New.
type Router struct {
	opts   Options // after defaults; read-only after New
	log    *slog.Logger
	table  atomic.Pointer[route.Table]
	rec    [2]metrics.Recorder // public traffic: what analysis judges
	latSum [2]atomic.Uint64    // nanoseconds, for the Prometheus histogram's _sum
	prev   [2]metrics.Recorder // preview traffic (smoke tests), kept apart

	fallbacks atomic.Uint64
	transport atomic.Pointer[http.Transport] // swapped when upstream_header changes (timeouts.go)
	upstream  liveTransport                  // what requests and health checks go through
	health    *http.Client
	scheme    string // to instances
	cookie    string // sticky cookie name; "" disables stickiness
	cookieSfx string
	dyn       atomic.Pointer[liveState] // what SetLive changes
	certs     *certStore                // the public listener's certificate; nil without TLS
	bufs      bufferPool
	states    sync.Pool
	errLog    *slog.Logger

	// serving is set while Serve runs; rebinds carries Rebind's requests
	// to it, and quit is closed once Serve no longer takes them.
	serving atomic.Bool
	rebinds chan rebindReq
	quit    atomic.Pointer[chan struct{}]
	// upHeader is the upstream header timeout in nanoseconds, read per
	// request; umu guards units, the listeners Serve serves now, which a
	// change of the client timeouts gives a new server (timeouts.go).
	upHeader atomic.Int64
	umu      sync.Mutex
	units    []*unit

	ctx    context.Context // cancelled by Close; parent of watchers and drains
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex // control plane only; the request path never takes it
	live    route.Color
	weight  float64
	preview route.Color // meaningful once preset
	preset  bool        // SetPreview was called
	pools   [2]poolState
	members map[string]*backend
	// retiring holds removed members, by ID, until their drain ended.
	retiring map[string]*backend
	closed   bool // set by Close; no goroutine starts after it
}

type poolState struct {
	version  string
	members  []*backend
	disabled bool
}

// New validates the router's options, loads the fallback page and the TLS
// certificate, and builds the upstream transport. It starts no goroutine;
// health watchers start with SetPool.
func New(opts Options) (*Router, error) {
	if opts.Service == "" {
		return nil, errors.New("new router: no service name")
	}
	opts = opts.withDefaults()
	log := opts.Logger.With("service", opts.Service)
	r := &Router{opts: opts, log: log, errLog: log, scheme: "http", members: map[string]*backend{}, retiring: map[string]*backend{},
		rebinds: make(chan rebindReq)}
	var errs []error
	lv, err := loadLive(opts.live())
	if err != nil {
		errs = append(errs, err)
	}
	r.dyn.Store(lv)
	r.upHeader.Store(int64(opts.UpstreamHeaderTimeout))
	if opts.StickyCookie != NoStickyCookie {
		r.cookie = opts.StickyCookie
	}
	r.cookieSfx = "; Path=/; Max-Age=" + strconv.Itoa(int(stickyMaxAge/time.Second)) + "; HttpOnly; SameSite=Lax"
	if opts.TLSCert != "" || opts.TLSKey != "" {
		if r.certs, err = newCertStore(opts.TLSCert, opts.TLSKey); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("new router for service %s: %w", opts.Service, errors.Join(errs...))
	}
	if opts.UpstreamTLS != nil {
		r.scheme = "https"
	}
	r.transport.Store(newTransport(opts.UpstreamHeaderTimeout, opts.UpstreamTLS))
	r.upstream = liveTransport{r}
	r.health = &http.Client{
		Transport:     r.upstream,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r.states.New = func() any { return new(reqState) }
	r.ctx, r.cancel = context.WithCancel(context.Background())
	t, err := route.Build(route.Spec{})
	if err != nil {
		return nil, fmt.Errorf("new router for service %s: %w", opts.Service, err)
	}
	r.table.Store(t)
	return r, nil
}

// newTransport tunes an http.Transport for many concurrent requests to few
// hosts: a large idle pool per host, no transparent compression (bodies
// pass through as the instance sent them), HTTP/1.1 only so that protocol
// upgrades (WebSocket) work. Its connections are guarded (upguard.go).
func newTransport(headerTimeout time.Duration, tlsConf *tls.Config) *http.Transport {
	d := &net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}
	var protos http.Protocols
	protos.SetHTTP1(true)
	return &http.Transport{
		DialContext:           guardConns(d.DialContext),
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		TLSClientConfig:       tlsConf,
		Protocols:             &protos,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
}

// SetPool replaces a colour's membership with backends of version (nil or
// empty: the colour has no pool). Instances whose ID (and address) were
// already members keep their live state; new ones start healthy, since the
// runtime gated them, and are health-checked from now on. Removed ones
// leave rotation at once, stop being checked, and drain in the background:
// their in-flight requests finish, bounded by the drain timeout, after
// which their streams are cut. A pool replaced by a different version, or
// one refilled after being empty, is back in rotation even if the colour
// was drained. An invalid membership (duplicate IDs or addresses) is
// logged and the previous pool kept.
func (r *Router) SetPool(color route.Color, version string, backends []Backend) {
	c := color & 1
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.pools[c]
	next := poolState{version: version, disabled: old.disabled && old.version == version && len(old.members) > 0}
	reused := map[string]bool{}
	var fresh []*backend
	for _, b := range backends {
		if be := r.members[b.ID]; be != nil && be.color == c && be.inst.Addr == b.Addr && !reused[b.ID] {
			reused[b.ID] = true
			next.members = append(next.members, be)
			continue
		}
		be := r.newBackend(c, b)
		fresh = append(fresh, be)
		next.members = append(next.members, be)
	}
	pools := r.pools
	pools[c] = next
	if err := r.publishLocked(r.live, r.weight, pools); err != nil {
		r.log.Error("pool rejected; keeping the previous one", "color", c, "version", version, "err", err)
		return
	}
	for _, be := range fresh {
		r.members[be.inst.ID] = be
		r.watch(be)
	}
	for _, be := range old.members {
		if !reused[be.inst.ID] {
			if r.members[be.inst.ID] == be {
				delete(r.members, be.inst.ID)
			}
			r.retire(be)
		}
	}
	r.log.Info("pool set", "color", c, "version", version, "instances", len(next.members))
}

// SetSplit makes live the live colour and gives its other colour
// candidateWeight percent (0 to 100, decimals allowed) of public traffic,
// in one atomic table swap. Colours given traffic by the split (live
// always, the candidate when its weight is above 0) are back in rotation
// if they had been drained.
func (r *Router) SetSplit(live route.Color, candidateWeight float64) error {
	if live > route.Green {
		return fmt.Errorf("set split for service %s: unknown live colour %d", r.opts.Service, live)
	}
	if math.IsNaN(candidateWeight) || candidateWeight < 0 || candidateWeight > 100 {
		return fmt.Errorf("set split for service %s: candidate weight %v outside 0..100", r.opts.Service, candidateWeight)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pools := r.pools
	pools[live].disabled = false
	if candidateWeight > 0 {
		pools[live.Other()].disabled = false
	}
	if err := r.publishLocked(live, candidateWeight, pools); err != nil {
		return fmt.Errorf("set split for service %s: %w", r.opts.Service, err)
	}
	r.log.Info("split set", "color", live, "candidate_weight", candidateWeight)
	return nil
}

// SetPreview makes the preview listener reach color's pool, in one atomic
// table swap, until the next SetPreview. The controller points it at the
// candidate while a deployment runs (Blue for a first deployment, while
// Blue is also live) and at the idle colour otherwise. Until it is first
// called, preview reaches the live colour's other. It does not bring a
// drained colour back: a disabled pool answers preview with 503 until
// SetSplit, SetPool or Undrain puts it back in rotation.
func (r *Router) SetPreview(color route.Color) {
	if color > route.Green {
		r.log.Error("preview colour ignored", "color", int(color))
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, prevSet := r.preview, r.preset
	r.preview, r.preset = color, true
	if err := r.publishLocked(r.live, r.weight, r.pools); err != nil {
		r.preview, r.preset = prev, prevSet
		r.log.Error("preview colour rejected", "color", color, "err", err)
		return
	}
	r.log.Info("preview set", "color", color)
}

// Undrain puts a colour taken out of rotation by Drain back in, for
// preview and for whatever weight the split gives it, in one table swap.
// The controller calls it when it starts a candidate in a drained colour
// whose pool the runtime adopts as it is (same version, so SetPool does not
// re-enable it). It does nothing for a colour that is not drained.
func (r *Router) Undrain(color route.Color) {
	c := color & 1
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.pools[c].disabled {
		return
	}
	pools := r.pools
	pools[c].disabled = false
	if err := r.publishLocked(r.live, r.weight, pools); err != nil {
		r.log.Error("undrain rejected", "color", c, "err", err)
		return
	}
	r.log.Info("undrained", "color", c)
}

// Split returns the live colour and the candidate's weight in percent.
func (r *Router) Split() (live route.Color, candidateWeight float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live, r.weight
}

// Pool returns a colour's version and members ("" and nil when it has no pool).
func (r *Router) Pool(color route.Color) (version string, backends []Backend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pools[color&1]
	for _, be := range p.members {
		backends = append(backends, Backend{ID: be.inst.ID, Addr: be.inst.Addr})
	}
	return p.version, backends
}

// Healthy returns how many of a colour's instances are selectable now
// (actively healthy and not passively ejected) and how many it has.
func (r *Router) Healthy(color route.Color) (healthy, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, be := range r.pools[color&1].members {
		if be.inst.Healthy() && !be.inst.Ejected(now) {
			healthy++
		}
	}
	return healthy, len(r.pools[color&1].members)
}

// Counts returns a colour's cumulative counters of public traffic; the
// controller's analysis differences two snapshots. Preview requests are
// not in them (smoke tests would skew a candidate's error rate, latency
// and request count); PreviewCounts has those. The latency of a WebSocket
// session or an event stream is its time to the response headers, not its
// length. A retried request counts
// once, on the colour first chosen for it; fallback answers count on
// neither colour.
func (r *Router) Counts(color route.Color) metrics.Counts { return r.rec[color&1].Snapshot() }

// PreviewCounts returns a colour's cumulative counters of requests that
// came through the preview handler.
func (r *Router) PreviewCounts(color route.Color) metrics.Counts {
	return r.prev[color&1].Snapshot()
}

// Close stops the health watchers and cuts what is still draining, then
// waits for the router's goroutines to end. Close does not stop Serve;
// cancel its context for that.
func (r *Router) Close() {
	r.mu.Lock()
	r.closed = true
	for _, be := range r.members {
		be.closeIdle(true)
	}
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// publishLocked builds and publishes the table for the given state and
// records it as current. r.mu must be held.
func (r *Router) publishLocked(live route.Color, weight float64, pools [2]poolState) error {
	spec := route.Spec{Live: live, Weight: weight, Preview: r.preview, PreviewSet: r.preset}
	for _, c := range route.Colors {
		p := pools[c]
		spec.Pools[c] = route.PoolSpec{Version: p.version, Disabled: p.disabled}
		for _, be := range p.members {
			spec.Pools[c].Instances = append(spec.Pools[c].Instances, be.inst)
		}
	}
	t, err := route.Build(spec)
	if err != nil {
		return err
	}
	r.table.Store(t)
	r.live, r.weight, r.pools = live, weight, pools
	return nil
}

// watch starts the active health check of a new member. r.mu must be held.
func (r *Router) watch(be *backend) {
	if r.closed {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	be.stopWatch = cancel
	log := r.log.With("color", be.color, "instance", be.inst.ID)
	r.wg.Go(func() {
		health.Watch(ctx, r.health, r.scheme, be.inst.Addr, r.settings().opts.Health, be.inst.Healthy(), func(ok bool, err error) {
			be.inst.SetHealthy(ok)
			if ok {
				log.Info("instance healthy")
			} else {
				log.Warn("instance unhealthy", "err", err)
			}
		})
	})
}

// retire stops checking a removed member and drains it in the background.
// r.mu must be held.
func (r *Router) retire(be *backend) {
	be.stopWatch()
	be.closeIdle(true)
	be.drained = make(chan struct{})
	if r.closed {
		be.cutStreams()
		close(be.drained)
		return
	}
	r.retiring[be.inst.ID] = be
	deadline := time.Now().Add(r.drainTimeout())
	r.wg.Go(func() {
		defer func() {
			r.mu.Lock()
			if r.retiring[be.inst.ID] == be {
				delete(r.retiring, be.inst.ID)
			}
			r.mu.Unlock()
			close(be.drained)
		}()
		if !waitIdle(r.ctx, []*backend{be}, deadline) {
			n := be.cutStreams()
			r.log.Warn("instance drain deadline passed; streams cut", "color", be.color, "instance", be.inst.ID, "streams", n)
			return
		}
		// A request that picked the instance from the table published
		// just before its removal may not have counted itself in flight
		// yet when the check above found none: look once more a moment
		// later before the instance is given up.
		t := time.NewTimer(retireSettle)
		defer t.Stop()
		select {
		case <-r.ctx.Done():
		case <-t.C:
			waitIdle(r.ctx, []*backend{be}, deadline)
		}
	})
}

// retireSettle is how long a removed instance that has gone idle is
// watched once more before WaitRetired lets it be stopped.
const retireSettle = 50 * time.Millisecond

// WaitRetired returns once every instance with one of ids that SetPool
// removed has finished its in-flight requests (or its drain timeout
// passed and its streams were cut), or when ctx is done. IDs that are not
// draining (never members, or already drained) are not waited for. The
// runtime stops an instance it took out of a pool only after this, so
// that no request is cut by the instance's exit.
func (r *Router) WaitRetired(ctx context.Context, ids []string) error {
	r.mu.Lock()
	var waits []chan struct{}
	for _, id := range ids {
		if be := r.retiring[id]; be != nil {
			waits = append(waits, be.drained)
		}
	}
	r.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return fmt.Errorf("service %s: wait for removed instances to drain: %w", r.opts.Service, ctx.Err())
		}
	}
	return nil
}

// waitIdle polls until none of members has a request in flight (true), or
// until deadline or ctx (false).
func waitIdle(ctx context.Context, members []*backend, deadline time.Time) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		idle := !slices.ContainsFunc(members, func(be *backend) bool { return be.inst.InFlight() > 0 })
		if idle {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

// Drain takes a colour out of all rotation (public and preview) in one
// table swap, then waits until its instances have no request in flight.
// When the drain timeout passes first, long-lived streams (SSE, WebSocket
// and other responses without a length) are cut and Drain returns once
// they have unwound (at most a second later). It returns an error only when
// ctx ends first (streams are cut then too). The colour stays out of
// rotation until SetSplit gives it traffic, SetPool gives it a new pool or
// Undrain puts it back.
func (r *Router) Drain(ctx context.Context, color route.Color) error {
	c := color & 1
	r.mu.Lock()
	pools := r.pools
	pools[c].disabled = true
	err := r.publishLocked(r.live, r.weight, pools)
	members := slices.Clone(r.pools[c].members)
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("drain %s %s: %w", r.opts.Service, c, err)
	}
	for _, be := range members {
		be.closeIdle(false)
	}
	defer func() {
		for _, be := range members {
			be.closeIdle(false) // those the drained requests gave back
		}
	}()
	start := time.Now()
	if waitIdle(ctx, members, start.Add(r.drainTimeout())) {
		r.log.Info("drained", "color", c, "took", time.Since(start))
		return nil
	}
	cut := 0
	for _, be := range members {
		cut += be.cutStreams()
	}
	r.log.Warn("drain deadline passed; streams cut", "color", c, "streams", cut)
	waitIdle(context.Background(), members, time.Now().Add(time.Second))
	if ctx.Err() != nil {
		return fmt.Errorf("drain %s %s: %w", r.opts.Service, c, ctx.Err())
	}
	return nil
}

// drainTimeout bounds draining now.
func (r *Router) drainTimeout() time.Duration { return r.settings().opts.DrainTimeout }
