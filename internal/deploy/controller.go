// Package deploy is cutover's deployment controller: per service, an
// explicit state machine (phases idle, provisioning, verifying, shifting,
// paused, rolling_back) that deploys a version to the idle colour, verifies
// it, shifts traffic step by step while analysing it against the live
// colour, promotes or rolls back on its own, keeps the previous pool warm
// and retires it once drained and quiet.
//
// The machine is the pure function Transition(State, Observation) (State,
// []Action). The Controller is its executor: one goroutine (Run) owns the
// state, feeds it observations (commands, job results, deadlines, failed
// pools), persists every new state with Store.SaveState before performing
// the actions, and sleeps until the next deadline. Slow work (starting a
// pool, hooks, draining and stopping) runs as a job in a goroutine owned by
// Run; the state names the job it requires, so after a crash the restarted
// executor runs it again, and every job is idempotent.
//
// Hooks run as jobs at these points of a deployment: pre_provision before
// the candidate starts (a failure fails the deployment with nothing
// started), pre_traffic once it is healthy, post_traffic and then
// post_promote once it has all traffic, post_retire once the previous
// pool of that promotion has been retired after keep_previous, and
// on_rollback when a candidate that took traffic is rolled back. Each hook
// that passes is persisted before the next one starts, so a restart runs
// again only the hook it interrupted; every run's output is kept in the
// deployment's history (Event.Output) and the log.
//
// Concurrency: every exported method of Controller is safe for concurrent
// use. Commands (Deploy, Promote, ...) are executed by the Run goroutine and
// wait for it; Status never waits for it; PoolFailed never blocks.
//
// Rollback while the previous pool is kept warm is an instant swap: the
// previous pool becomes live, and the pool that was live (the promoted
// version) is drained, left until quiet and stopped; it is not kept for a
// roll-forward (unless it cannot be retired, say because the live pool has
// no healthy instance; it is then kept and retired later). History records
// that rollback as a deployment of the previous version with strategy
// "rollback". A previous pool with no healthy instance is not rolled back
// to: the live pool stays.
package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// Router is the part of the traffic router the controller drives.
type Router interface {
	// SetSplit sends candidateWeight percent (0-100) of public traffic to
	// live.Other() and the rest to live, in one atomic swap.
	SetSplit(live route.Color, candidateWeight float64) error
	// Split returns the live colour and the candidate's weight in percent.
	Split() (route.Color, float64)
	// Drain returns once the colour has no request in flight (or ctx ends).
	Drain(ctx context.Context, color route.Color) error
	// Counts returns the colour's cumulative counters since the router started.
	Counts(color route.Color) metrics.Counts
	// Healthy reports how many of the colour's instances pass health checks.
	Healthy(color route.Color) (healthy, total int)
	// SetPreview makes preview traffic reach color's pool. The controller
	// points it at the candidate while a deployment runs (blue for a
	// first deployment) and at the idle colour otherwise.
	SetPreview(color route.Color)
	// Undrain puts a colour taken out of rotation by Drain back in, for
	// preview and for its weight. The controller calls it once the
	// runtime has started a candidate: a runtime that adopts a running
	// pool of the same version leaves the router's membership as it was,
	// and the colour would stay drained, so preview (the smoke tests)
	// would answer 503.
	Undrain(color route.Color)
	// Sealed reports whether no request can reach the colour any more:
	// Drain took it out of rotation, nothing is in flight, and the router
	// is the only way in (the embedded proxy). A router whose clients
	// reach pools through caches it does not control (DNS records with a
	// TTL) answers false, and the controller waits for the quiet period
	// before it stops a drained pool.
	Sealed(color route.Color) bool
}

// Runtime starts and stops pools; runtime.Driver satisfies it.
type Runtime interface {
	Start(ctx context.Context, color route.Color, rel runtime.Release) ([]runtime.Instance, error)
	Stop(ctx context.Context, color route.Color) error
	// Instances returns the colour's healthy instances; the controller
	// reads their version to tell a start job run again after a restart
	// from one that replaces another version.
	Instances(color route.Color) []runtime.Instance
}

// Store persists the controller's state and history. SaveState must be
// durable when it returns; LoadState reports found=false for a service never
// saved and an error for a state it cannot read. Deployments returns the
// newest first, at most limit (all when limit <= 0).
type Store interface {
	SaveState(service string, st *State) error
	LoadState(service string) (*State, bool, error)
	SaveDeployment(d *Deployment) error
	Deployments(service string, limit int) ([]Deployment, error)
	// Deployment reads one record by id; found is false when there is none.
	Deployment(service, id string) (d Deployment, found bool, err error)
}

var _ Runtime = runtime.Driver(nil)

// Options configure a Controller. Settings.Name, Router, Runtime and
// Store are required.
type Options struct {
	Settings Settings
	Router   Router
	Runtime  Runtime
	Store    Store
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// PreviewURL reaches only the candidate pool; hooks get it as PREVIEW_URL.
	PreviewURL string
	// Now defaults to time.Now.
	Now func() time.Time
	// Events, when set, receives every event (history entries and each
	// analysis verdict) from the Run goroutine; it must not block.
	Events func(Event)
	// Finished, when set, receives each deployment's record once, from
	// the Run goroutine, when its outcome becomes final (promoted, rolled
	// back, aborted, failed); it must not block.
	Finished func(Deployment)
}

// Controller runs the deployments of one service.
type Controller struct {
	opts Options
	set  atomic.Pointer[Settings] // swapped by SetSettings
	log  *slog.Logger
	cmds chan command
	job  *runningJob // owned by Run
	// progress carries the running job's reports to Run.
	progress chan progress

	mu sync.Mutex
	st State // owned by Run; mu guards reads by Status
	// changed is closed, and replaced, whenever st changes, so that a
	// caller can wait for the next state without polling; guarded by mu.
	changed  chan struct{}
	loaded   bool // Restore found a persisted state
	restored bool // Restore ran

	failMu   sync.Mutex
	failed   []Observation
	failWake chan struct{}
}

type command struct {
	obs   Observation
	reply chan reply
}

type reply struct {
	st  State
	err error
}

// New returns a controller for opts.Service. Call Restore, then Run.
func New(opts Options) (*Controller, error) {
	if opts.Settings.Name == "" || opts.Router == nil || opts.Runtime == nil || opts.Store == nil {
		return nil, errors.New("deploy controller: Settings.Name, Router, Runtime and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Controller{
		opts:     opts,
		log:      opts.Logger.With("service", opts.Settings.Name),
		cmds:     make(chan command),
		progress: make(chan progress),
		failWake: make(chan struct{}, 1),
	}
	set := opts.Settings.withDefaults()
	c.set.Store(&set)
	c.st = State{Schema: StateSchema, Service: c.cfg().Name, Phase: PhaseIdle, Policy: policyFor(c.cfg())}
	c.changed = make(chan struct{})
	return c, nil
}

// cfg returns the service's current settings, defaults applied.
func (c *Controller) cfg() *Settings { return c.set.Load() }

// SetSettings replaces the service's settings after a reload. Hooks and
// timeouts apply at once; steps, analysis, keep_previous and quiet_period
// apply from the next deployment on, so a running deployment is judged by
// the rules it started with (also across a restart). The service name
// must not change.
func (c *Controller) SetSettings(s Settings) error {
	if s.Name != c.cfg().Name {
		return fmt.Errorf("reload: controller of %s cannot take the settings of service %q", c.cfg().Name, s.Name)
	}
	s = s.withDefaults()
	c.set.Store(&s)
	return nil
}

// policyFor is the policy a new deployment (or an idle service) follows.
func policyFor(s *Settings) Policy { return s.Policy }

// Restore loads the persisted state and gives the router its persisted
// split (and preview colour) before anything else happens; Run then resumes
// the interrupted deployment. A state that cannot be read or makes no sense is an error
// (the daemon must stop, not start empty). Call it once, before Run.
func (c *Controller) Restore(ctx context.Context) error {
	c.mu.Lock()
	c.restored = true
	c.mu.Unlock()
	st, found, err := c.opts.Store.LoadState(c.cfg().Name)
	if err != nil {
		return fmt.Errorf("restore %s: load state: %w", c.cfg().Name, err)
	}
	if !found {
		return c.closeOrphans(nil)
	}
	if err := checkState(st, c.cfg().Name); err != nil {
		return fmt.Errorf("restore %s: corrupt state: %w", c.cfg().Name, err)
	}
	if st.Live != nil {
		if err := c.opts.Router.SetSplit(st.Live.Color, st.Weight); err != nil {
			return fmt.Errorf("restore %s: routing %g%% beside live %s %s: %w", c.cfg().Name, st.Weight, st.Live.Color, st.Live.Version, err)
		}
	}
	c.setPreview(PreviewColor(*st))
	if err := c.closeOrphans(st.Run); err != nil {
		return err
	}
	// A running deployment is judged by the policy it started with (and
	// persisted), even if the configuration was reloaded before the
	// restart; an idle service takes the current configuration.
	if st.Run == nil || st.Phase == PhaseIdle {
		st.Policy = policyFor(c.cfg())
	}
	c.setState(*st)
	c.log.Info("state restored", "phase", st.Phase, "weight", st.Weight)
	return nil
}

// setPreview points the router's preview at color if the router can.
func (c *Controller) setPreview(color route.Color) {
	c.opts.Router.SetPreview(color)
}

// orphanScan is how many recent history records Restore checks for orphans.
const orphanScan = 20

// closeOrphans ends history records that say "running" but belong to no
// run in the state. History is written before state, so a crash between
// the two at the start of a deployment leaves such a record; the API never
// acknowledged that deployment (it answers after the state is saved), so
// it is recorded as failed rather than shown as running forever.
func (c *Controller) closeOrphans(run *Run) error {
	recs, err := c.opts.Store.Deployments(c.cfg().Name, orphanScan)
	if err != nil {
		return fmt.Errorf("restore %s: read history: %w", c.cfg().Name, err)
	}
	for _, d := range recs {
		if d.Outcome != OutcomeRunning || (run != nil && d.ID == run.Record.ID) {
			continue
		}
		d.Outcome, d.EndedAt = OutcomeFailed, c.opts.Now()
		d.Reason = "interrupted: the daemon stopped before this deployment was acknowledged; nothing was started"
		if err := c.opts.Store.SaveDeployment(&d); err != nil {
			return fmt.Errorf("restore %s: close interrupted deployment %s: %w", c.cfg().Name, d.ID, err)
		}
		c.log.Warn("closed an interrupted deployment", "deployment", d.ID, "version", d.Version)
	}
	return nil
}

// checkState rejects states this version cannot resume.
func checkState(st *State, service string) error {
	if st.Schema != StateSchema {
		return fmt.Errorf("schema %d, this cutover reads %d", st.Schema, StateSchema)
	}
	if st.Service != service {
		return fmt.Errorf("state belongs to service %q", st.Service)
	}
	switch st.Phase {
	case PhaseIdle:
	case PhaseProvisioning, PhaseVerifying, PhaseShifting, PhasePaused, PhaseRollingBack:
		if st.Run == nil {
			return fmt.Errorf("phase %s without a deployment", st.Phase)
		}
	default:
		return fmt.Errorf("unknown phase %q", st.Phase)
	}
	if st.Weight < 0 || st.Weight > 100 {
		return fmt.Errorf("weight %g outside 0-100", st.Weight)
	}
	if r := st.Run; r != nil && (r.Step >= len(r.Steps) || r.Step < -1) {
		return fmt.Errorf("deployment %s at step %d of %d", r.Record.ID, r.Step+1, len(r.Steps))
	}
	if (st.Phase == PhaseShifting || st.Phase == PhasePaused) && (st.Live == nil || st.Run.Step < 0) {
		return fmt.Errorf("phase %s without live pool or step", st.Phase)
	}
	return nil
}

// Status returns the service's current state. It never waits for Run.
func (c *Controller) Status() Status {
	c.mu.Lock()
	st := c.st
	c.mu.Unlock()
	s := Status{Service: st.Service, Phase: st.Phase, Weights: map[string]float64{"blue": 0, "green": 0}}
	if st.Live != nil {
		l := *st.Live
		s.Live = &l
		s.Weights[l.Color.String()] = 100 - st.Weight
		s.Weights[l.Color.Other().String()] = st.Weight
	}
	if st.Previous != nil {
		p := *st.Previous
		s.Previous = &p
	}
	if r := st.Run; r != nil && st.Phase != PhaseIdle {
		cand := r.Candidate
		s.Candidate = &cand
		ref := &DeploymentRef{ID: r.Record.ID, Version: r.Record.Version, Strategy: r.Record.Strategy, Step: r.Step + 1,
			Steps: len(r.Steps), StartedAt: r.Record.StartedAt, StepUntil: r.StepUntil}
		if r.Step >= 0 {
			ref.Manual = r.Steps[r.Step].Manual
		}
		s.Deployment = ref
		if r.Verdict != nil {
			v := *r.Verdict
			s.Analysis = &v
		}
	}
	downStatus(&s, st)
	if tr, ok := c.opts.Router.(TrafficReporter); ok {
		s.Traffic = tr.TrafficStatus()
	}
	return s
}

// History returns the service's deployments, newest first, at most limit.
func (c *Controller) History(limit int) ([]Deployment, error) {
	ds, err := c.opts.Store.Deployments(c.cfg().Name, limit)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", c.cfg().Name, err)
	}
	return ds, nil
}

// Deployment returns one history record by id; found is false when the
// service has no such deployment.
func (c *Controller) Deployment(id string) (Deployment, bool, error) {
	d, found, err := c.opts.Store.Deployment(c.cfg().Name, id)
	if err != nil {
		return Deployment{}, false, fmt.Errorf("deployment %s of %s: %w", id, c.cfg().Name, err)
	}
	return d, found, nil
}

// Deploy starts a deployment of version with a strategy ("" for the
// configured steps, or a preset: all-at-once, canary10-5m, linear10-1m) and
// returns its record once the new state is persisted. It fails with
// ErrInvalid for a bad version or strategy and ErrBusy, naming the running
// deployment, while another one is under way. actor is recorded in history.
// env is the release's own environment (`deploy --env`): its instances
// get it over the service's configured one, history keeps its names and
// value hashes, and a rollback goes back to the previous release's.
//
// Right after a deployment ends, status already reports idle while its
// last work runs (post_traffic and post_promote hooks, draining a demoted
// pool), and the post_retire hooks that follow a retirement run while the
// service is idle too. A deploy in that window waits for it, up to
// finishWait, instead of being refused, so `deploy --wait && deploy` in a
// script does what it says.
func (c *Controller) Deploy(ctx context.Context, version, strategy, actor string, env map[string]string) (Deployment, error) {
	steps, err := Steps(strategy, c.cfg().Steps)
	if err == nil {
		err = ValidateEnv(env)
	}
	if err != nil {
		return Deployment{}, fmt.Errorf("deploy %s %s: %w", c.cfg().Name, version, err)
	}
	deadline := time.Now().Add(finishWait)
	for {
		if err := c.awaitFinish(ctx, deadline); err != nil {
			return Deployment{}, fmt.Errorf("deploy %s %s: %w", c.cfg().Name, version, err)
		}
		now := c.opts.Now()
		policy := policyFor(c.cfg())
		obs := Observation{Kind: ObsDeploy, Now: now, Actor: actorOr(actor), ID: c.newID(now), Version: version, Strategy: strategy, Steps: steps, Env: env, Policy: &policy}
		st, err := c.do(ctx, obs)
		if errors.Is(err, ErrBusy) && finishing(c.state()) && time.Now().Before(deadline) {
			continue // last work began between the wait and the command (a retirement's post_retire hooks)
		}
		if err != nil {
			return Deployment{}, err
		}
		return st.Run.Record, nil
	}
}

// finishWait bounds how long Deploy waits for the previous deployment's
// last work; it stays well inside the API's 30 s write timeout.
const finishWait = 20 * time.Second

// awaitFinish waits, until deadline, while the state is idle but a
// finished run's last job or a retirement's post_retire hooks still run.
// If the wait runs out, the deploy goes ahead and Admit refuses it with
// ErrBusy naming what is still running.
func (c *Controller) awaitFinish(ctx context.Context, deadline time.Time) error {
	return c.awaitState(ctx, deadline, finishing)
}

// awaitState waits, until deadline, while busy holds for the state, waking
// on every state change; it returns ctx's error if ctx ends first.
func (c *Controller) awaitState(ctx context.Context, deadline time.Time, busy func(State) bool) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		c.mu.Lock()
		waiting := busy(c.st)
		changed := c.changed
		c.mu.Unlock()
		if !waiting {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case <-changed:
		}
	}
}

// finishing reports whether st is idle while work that a deploy waits for
// still runs.
func finishing(st State) bool {
	return st.Run != nil && st.Phase == PhaseIdle || st.Run == nil && st.Job.kind() == JobPostRetire
}

// setState makes st the controller's state and wakes whoever waits for a
// change. Only Run, and Restore and AssumeLive before it, call it.
func (c *Controller) setState(st State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st, c.loaded = st, true
	close(c.changed)
	c.changed = make(chan struct{})
}

// Promote skips the remaining steps and gates: the candidate takes all
// traffic now. ErrNoDeployment when nothing is shifting.
func (c *Controller) Promote(ctx context.Context) error { return c.command(ctx, ObsPromote) }

// Pause holds the current step (analysis goes on and still rolls back).
func (c *Controller) Pause(ctx context.Context) error { return c.command(ctx, ObsPause) }

// Resume continues a paused deployment; the step's timers are extended by
// the time it was paused.
func (c *Controller) Resume(ctx context.Context) error { return c.command(ctx, ObsResume) }

// Abort ends the running deployment: traffic back to live in one swap and
// the candidate stopped after it drains; the outcome is "aborted".
func (c *Controller) Abort(ctx context.Context) error { return c.command(ctx, ObsAbort) }

// Rollback returns all traffic to the previous pool now: it rolls back the
// running deployment, or, when idle, swaps back to the pool kept warm after
// the last promotion (ErrNoPrevious when there is none, or when the router
// counts none of its instances healthy; the live pool then stays). The swap
// does not wait for the promotion's post_traffic or post_promote hooks: it
// cancels them, and the promoted deployment's record says so.
//
// The instant rollback is recorded in history as a deployment of its own
// (strategy "rollback"), so it gets an id like any other.
func (c *Controller) Rollback(ctx context.Context) error {
	now := c.opts.Now()
	_, err := c.do(ctx, Observation{Kind: ObsRollback, Now: now, Actor: ActorUser, ID: c.newID(now)})
	return err
}

// PoolFailed reports that a pool cannot be kept running (the runtime's
// Listener.Failed); a failing candidate is rolled back. It never blocks.
func (c *Controller) PoolFailed(color route.Color, version string, err error) {
	msg := "pool failed"
	if err != nil {
		msg = err.Error()
	}
	c.failMu.Lock()
	c.failed = append(c.failed, Observation{Kind: ObsPoolFailed, Color: color, Version: version, Err: msg, Actor: ActorController})
	c.failMu.Unlock()
	select {
	case c.failWake <- struct{}{}:
	default:
	}
}

func (c *Controller) command(ctx context.Context, kind ObsKind) error {
	_, err := c.do(ctx, Observation{Kind: kind, Actor: ActorUser})
	return err
}

// do hands a command to Run and waits for its outcome.
func (c *Controller) do(ctx context.Context, obs Observation) (State, error) {
	cmd := command{obs: obs, reply: make(chan reply, 1)}
	select {
	case c.cmds <- cmd:
	case <-ctx.Done():
		return State{}, fmt.Errorf("%s %s: %w", obs.Kind, c.cfg().Name, ctx.Err())
	}
	select {
	case r := <-cmd.reply:
		return r.st, r.err
	case <-ctx.Done():
		return State{}, fmt.Errorf("%s %s: %w", obs.Kind, c.cfg().Name, ctx.Err())
	}
}

func actorOr(a string) string {
	if a == "" {
		return ActorUser
	}
	return a
}

func (c *Controller) newID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%s-%s-%s", c.cfg().Name, now.UTC().Format("20060102-150405"), hex.EncodeToString(b[:]))
}
