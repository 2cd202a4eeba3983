package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// The real router, drivers and bbolt store need the network, processes or
// files, which do not run inside a synctest bubble; these in-memory stand-ins
// implement the controller's small interfaces for executor tests.

// fakeRouter splits synthetic traffic by the controller's weights.
type fakeRouter struct {
	mu      sync.Mutex
	live    route.Color
	weight  float64
	splits  []string // "blue:10" per SetSplit
	counts  [2]metrics.Counts
	healthy [2]int // instances passing health checks, per colour
	total   [2]int // instances registered, per colour
	drained []route.Color
	// disabled models the real router's drained colours: Drain takes a
	// colour out of rotation (public and preview); SetPool of another
	// version or of an empty pool, Undrain, and SetSplit giving the colour
	// traffic put it back. version is the colour's pool as SetPool set it.
	disabled [2]bool
	version  [2]string
	// calls logs drains and the runtime's starts and stops in order:
	// "drain blue", "start blue v3", "stop blue".
	calls []string
	// previews logs SetPreview's colours.
	previews []route.Color
	// drainHold makes Drain wait for its context, as a pool with a
	// long-lived stream in flight does.
	drainHold bool
	// drainRouted makes Drain answer a StillRoutedError, as an ALB or
	// Route53 router does while its engine still gives the colour weight.
	drainRouted bool
	// lag is CountsLag: how long its counts trail what it serves, as a
	// CloudWatch-fed router's do.
	lag time.Duration
	// seals makes a drained colour sealed, as the embedded router's is;
	// without it the fake stands for a DNS-like router whose drained pools
	// may still be reached, so that retirement waits for the quiet period.
	seals bool
	// errRate and latency per colour decide the synthetic traffic.
	errRate [2]float64
	latency [2]time.Duration
	errAcc  [2]float64
}

func (r *fakeRouter) SetSplit(live route.Color, w float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live, r.weight = live, w
	r.disabled[live] = false
	if w > 0 {
		r.disabled[live.Other()] = false
	}
	r.splits = append(r.splits, fmt.Sprintf("%s:%g", live, w))
	return nil
}

func (r *fakeRouter) CountsLag() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lag
}

func (r *fakeRouter) Split() (route.Color, float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live, r.weight
}

func (r *fakeRouter) Sealed(c route.Color) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seals && r.disabled[c] && r.counts[c].InFlight == 0
}

func (r *fakeRouter) Drain(ctx context.Context, c route.Color) error {
	r.mu.Lock()
	r.drained = append(r.drained, c)
	r.disabled[c] = true
	r.calls = append(r.calls, "drain "+c.String())
	hold, routed := r.drainHold, r.drainRouted
	r.mu.Unlock()
	if routed {
		return &StillRoutedError{Err: fmt.Errorf("the engine still gives %s weight", c)}
	}
	if hold {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (r *fakeRouter) Counts(c route.Color) metrics.Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[c]
}

func (r *fakeRouter) Healthy(c route.Color) (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.healthy[c], r.total[c]
}

func (r *fakeRouter) SetPreview(c route.Color) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.previews = append(r.previews, c)
}

// Undrain puts a drained colour back in rotation.
func (r *fakeRouter) Undrain(c route.Color) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.disabled[c] = false
	r.calls = append(r.calls, "undrain "+c.String())
}

// previewServes reports whether a preview request (a smoke test) would
// reach an instance now, rather than the 503 of a drained or dead colour.
func (r *fakeRouter) previewServes() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.previews) == 0 {
		return false
	}
	c := r.previews[len(r.previews)-1]
	return !r.disabled[c] && r.healthy[c] > 0
}

// preview returns the colour preview reaches, and false before SetPreview.
func (r *fakeRouter) preview() (route.Color, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.previews) == 0 {
		return 0, false
	}
	return r.previews[len(r.previews)-1], true
}

// note appends a runtime call to the log of calls.
func (r *fakeRouter) note(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *fakeRouter) callLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// setHealthy changes how many of the colour's instances pass health checks.
func (r *fakeRouter) setHealthy(c route.Color, healthy int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.healthy[c] = healthy
}

// setPool is SetPool as the runtime's listener calls it: a pool of
// another version, or one refilled after being empty, is back in rotation;
// the same pool adopted as it is stays drained.
func (r *fakeRouter) setPool(c route.Color, version string, healthy int, errRate float64, lat time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.disabled[c] = r.disabled[c] && r.version[c] == version && r.total[c] > 0
	r.version[c] = version
	r.healthy[c], r.total[c], r.errRate[c], r.latency[c] = healthy, healthy, errRate, lat
}

func (r *fakeRouter) splitLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.splits)
}

// serve adds n requests split by the current weights, errors spread evenly.
func (r *fakeRouter) serve(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cand := int(float64(n)*r.weight/100 + 0.5)
	for c, k := range map[route.Color]int{r.live: n - cand, r.live.Other(): cand} {
		if k == 0 {
			continue
		}
		var rec metrics.Recorder
		r.errAcc[c] += float64(k) * r.errRate[c]
		errs := int(r.errAcc[c])
		r.errAcc[c] -= float64(errs)
		for i := range k {
			status := 200
			if i < errs {
				status = 503
			}
			rec.Start()
			rec.Done(status, r.latency[c], false)
		}
		s := rec.Snapshot()
		cur := &r.counts[c]
		cur.Requests += s.Requests
		for i := range s.Class {
			cur.Class[i] += s.Class[i]
		}
		for i := range s.Latency {
			cur.Latency[i] += s.Latency[i]
		}
	}
}

// traffic serves rps requests a second in 100 ms slices until ctx ends.
func (r *fakeRouter) traffic(ctx context.Context, rps int) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.serve(rps / 10)
		}
	}
}

// fakeRuntime starts pools instantly; versions listed in errRate serve errors.
type fakeRuntime struct {
	mu      sync.Mutex
	router  *fakeRouter
	running map[route.Color]string
	log     []string
	errRate map[string]float64
	latency map[string]time.Duration
	fail    map[string]error
	env     [2]map[string]string // the release env each colour was last started with
}

func newFakeRuntime(r *fakeRouter) *fakeRuntime {
	return &fakeRuntime{router: r, running: map[route.Color]string{}, errRate: map[string]float64{}, latency: map[string]time.Duration{}, fail: map[string]error{}}
}

func (f *fakeRuntime) Start(ctx context.Context, c route.Color, rel runtime.Release) ([]runtime.Instance, error) {
	v := rel.Version
	f.mu.Lock()
	defer f.mu.Unlock()
	f.env[c&1] = rel.Env
	f.log = append(f.log, "start "+c.String()+" "+v)
	f.router.note("start " + c.String() + " " + v)
	if err := f.fail[v]; err != nil {
		return nil, err
	}
	f.running[c] = v
	lat := f.latency[v]
	if lat == 0 {
		lat = 10 * time.Millisecond
	}
	f.router.setPool(c, v, 2, f.errRate[v], lat)
	return []runtime.Instance{{ID: "x", Color: c, Version: v}}, nil
}

func (f *fakeRuntime) Stop(ctx context.Context, c route.Color) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, "stop "+c.String())
	f.router.note("stop " + c.String())
	delete(f.running, c)
	f.router.setPool(c, "", 0, 0, 0)
	return nil
}

// Instances reports the colour's pool as runtime.Driver does.
func (f *fakeRuntime) Instances(c route.Color) []runtime.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.running[c]
	if !ok {
		return nil
	}
	return []runtime.Instance{{ID: "x", Color: c, Version: v}}
}

func (f *fakeRuntime) pools() map[route.Color]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[route.Color]string{}
	for k, v := range f.running {
		out[k] = v
	}
	return out
}

// fakeStore keeps JSON, as the bbolt store does, so State must round-trip.
type fakeStore struct {
	mu    sync.Mutex
	state map[string][]byte
	deps  map[string][]byte
	order []string
	saves int
	// ops logs every write in order: "state <run id or ->",
	// "record <id> <outcome>".
	ops []string
}

func newFakeStore() *fakeStore {
	return &fakeStore{state: map[string][]byte{}, deps: map[string][]byte{}}
}

func (s *fakeStore) SaveState(service string, st *State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state[service] = b
	s.saves++
	run := "-"
	if st.Run != nil {
		run = st.Run.Record.ID
	}
	s.ops = append(s.ops, "state "+run)
	return nil
}

func (s *fakeStore) LoadState(service string) (*State, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.state[service]
	if !ok {
		return nil, false, nil
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, true, err
	}
	return &st, true, nil
}

func (s *fakeStore) SaveDeployment(d *Deployment) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.deps[d.ID]; !ok {
		s.order = append(s.order, d.ID)
	}
	s.deps[d.ID] = b
	s.ops = append(s.ops, fmt.Sprintf("record %s %s", d.ID, d.Outcome))
	return nil
}

func (s *fakeStore) Deployments(service string, limit int) ([]Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Deployment
	for i := len(s.order) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		var d Deployment
		if err := json.Unmarshal(s.deps[s.order[i]], &d); err != nil {
			return nil, err
		}
		if d.Service == service {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *fakeStore) Deployment(service, id string) (Deployment, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.deps[id]
	if !ok {
		return Deployment{}, false, nil
	}
	var d Deployment
	if err := json.Unmarshal(b, &d); err != nil || d.Service != service {
		return Deployment{}, false, err
	}
	return d, true, nil
}

// harness wires a controller to the fakes.
type harness struct {
	t      *testing.T
	svc    Settings
	router *fakeRouter
	rt     *fakeRuntime
	store  *fakeStore
	c      *Controller
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	events []Event
	// onEvent, when set before start, sees each event on the Run
	// goroutine as it is emitted, before the actions that follow it.
	onEvent func(Event)
}

func testService() Settings {
	return Settings{
		Name:         "web",
		DrainTimeout: 5 * time.Second,
		Steps:        []Step{{Weight: 10, Pause: 30 * time.Second}, {Weight: 50, Pause: 30 * time.Second}},
		Policy: Policy{Interval: time.Second, MaxErrorRate: 0.01, MaxP99Latency: time.Second, MinRequests: 50,
			ProgressDeadline: 2 * time.Minute, KeepPrevious: time.Hour, QuietPeriod: 10 * time.Second},
	}
}

// edit changes the controller's settings as a reload would.
func (h *harness) edit(change func(*Settings)) {
	h.t.Helper()
	s := *h.c.cfg()
	change(&s)
	if err := h.c.SetSettings(s); err != nil {
		h.t.Fatal(err)
	}
}

func newHarness(t *testing.T, svc Settings, store *fakeStore) *harness {
	h := &harness{t: t, svc: svc, router: &fakeRouter{}, store: store}
	h.rt = newFakeRuntime(h.router)
	c, err := New(Options{Settings: svc, Router: h.router, Runtime: h.rt, Store: store,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PreviewURL: "http://127.0.0.1:8081",
		Events: func(ev Event) {
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
			if h.onEvent != nil {
				h.onEvent(ev)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	return h
}

// start restores and runs the controller and 500 req/s of traffic.
func (h *harness) start() {
	if err := h.c.Restore(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.c.Run(ctx) }()
	go h.router.traffic(ctx, 500)
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

func (h *harness) deploy(version, strategy string) Deployment {
	h.t.Helper()
	d, err := h.c.Deploy(context.Background(), version, strategy, "", nil)
	if err != nil {
		h.t.Fatalf("deploy %s: %v", version, err)
	}
	return d
}

// firstLive deploys v1 and waits until it is live.
func (h *harness) firstLive() {
	h.t.Helper()
	h.deploy("v1", "")
	h.waitPhase(PhaseIdle, time.Minute)
	if st := h.c.Status(); st.Live == nil || st.Live.Version != "v1" || st.Live.Color != route.Blue {
		h.t.Fatalf("after the first deployment: %+v", st)
	}
}

// waitPhase sleeps (in fake time) until the phase is reached with no
// deployment running, failing after limit.
func (h *harness) waitPhase(p Phase, limit time.Duration) time.Duration {
	h.t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		time.Sleep(100 * time.Millisecond)
		st := h.c.state()
		if st.Phase == p && (p != PhaseIdle || st.Run == nil) {
			return time.Since(start)
		}
	}
	h.t.Fatalf("phase %s not reached within %v; status %+v", p, limit, h.c.Status())
	return 0
}

func (h *harness) history() []Deployment {
	h.t.Helper()
	ds, err := h.c.History(0)
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

var errCrash = errors.New("instance exited 3 times in 10s")
