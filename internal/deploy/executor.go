package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// runningJob is the job goroutine Run owns.
type runningJob struct {
	seq    uint64
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	detail string
}

// Run executes the controller until ctx is done; it returns nil then. It
// resumes a state loaded by Restore (calling Restore itself if the caller
// did not, and returning its error). A state that cannot be persisted
// stops nothing: the command that caused it fails and the old state stays
// in force.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	loaded, restored := c.loaded, c.restored
	c.mu.Unlock()
	if !restored {
		if err := c.Restore(ctx); err != nil {
			return err
		}
		c.mu.Lock()
		loaded = c.loaded
		c.mu.Unlock()
	}
	if loaded {
		if err := c.apply(ctx, Observation{Kind: ObsRestart, Actor: ActorDaemon}); err != nil {
			c.log.Error("resuming after restart", "err", err)
		}
	}
	defer c.stopJob()
	for {
		var wake <-chan time.Time
		var timer *time.Timer
		if at := nextWake(c.state(), c.opts.Now()); !at.IsZero() {
			timer = time.NewTimer(at.Sub(c.opts.Now()))
			wake = timer.C
		}
		var jobDone chan struct{}
		if c.job != nil {
			jobDone = c.job.done
		}
		select {
		case <-ctx.Done():
			return nil
		case cmd := <-c.cmds:
			err := c.apply(ctx, cmd.obs)
			cmd.reply <- reply{st: c.state(), err: err}
		case p := <-c.progress:
			c.must(ctx, p.obs)
			close(p.done)
		case <-jobDone:
			j := c.job
			c.job = nil
			obs := Observation{Kind: ObsJobDone, Job: j.seq, Detail: j.detail}
			if j.err != nil {
				obs.Err, obs.Output = j.err.Error(), hookOutput(j.err)
				var ld *liveDownError
				obs.Deferred = errors.As(j.err, &ld)
			}
			c.must(ctx, obs)
		case <-wake:
			c.must(ctx, Observation{Kind: ObsTick})
		case <-c.failWake:
			c.failMu.Lock()
			failed := c.failed
			c.failed = nil
			c.failMu.Unlock()
			for _, obs := range failed {
				c.must(ctx, obs)
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// progress is a job's report, through Run, of a step it has done (a hook
// that passed); done is closed once Run has applied it.
type progress struct {
	obs  Observation
	done chan struct{}
}

// report hands a job's progress to Run and returns once Run has applied
// (persisted) it, or when ctx (the job's) ends.
func (c *Controller) report(ctx context.Context, obs Observation) {
	p := progress{obs: obs, done: make(chan struct{})}
	select {
	case c.progress <- p:
	case <-ctx.Done():
		return
	}
	select {
	case <-p.done:
	case <-ctx.Done():
	}
}

// must applies an observation that has no caller to report to.
func (c *Controller) must(ctx context.Context, obs Observation) {
	if err := c.apply(ctx, obs); err != nil {
		c.log.Error("controller step failed", "observation", obs.Kind, "err", err)
	}
}

func (c *Controller) state() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// nextWake is the earliest deadline the state waits for, or zero.
func nextWake(st State, now time.Time) time.Time {
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if r := st.Run; r != nil && r.Step >= 0 {
		switch st.Phase {
		case PhaseShifting:
			earliest(r.NextAnalysis)
			earliest(r.StepUntil)
			if !r.StepUntil.IsZero() && !now.Before(r.StepUntil) {
				earliest(r.Deadline)
			}
		case PhasePaused:
			earliest(r.NextAnalysis)
		}
	}
	if r := st.Run; r != nil {
		earliest(r.SettleAt)
	}
	if r := st.Run; r != nil && st.Phase == PhaseRollingBack {
		earliest(r.RetryAt)
	}
	if st.Run == nil && st.Job == nil && st.Previous != nil && !st.Retiring && st.Down == nil {
		earliest(st.Previous.Until)
	}
	return at
}

// apply runs one observation through Admit and Transition, persists the
// history records and the new state, then performs its actions.
func (c *Controller) apply(ctx context.Context, obs Observation) error {
	if obs.Now.IsZero() {
		obs.Now = c.opts.Now()
	}
	for _, col := range route.Colors {
		obs.Counts[col] = c.opts.Router.Counts(col)
		obs.Health[col].Healthy, obs.Health[col].Total = c.opts.Router.Healthy(col)
	}
	h := c.cfg().Hooks
	obs.Hooks = HookSet{PreProvision: len(h.PreProvision) > 0, PostPromote: len(h.PostPromote) > 0, PostRetire: len(h.PostRetire) > 0,
		Preflight: c.cfg().Preflight != nil}
	cur := c.state()
	if db := c.cfg().Database; db != nil && cur.Run != nil {
		obs.Database = db()
	}
	if err := Admit(cur, obs); err != nil {
		return err
	}
	next, acts := Transition(cur, obs)
	if len(acts) == 0 && obs.Kind != ObsTick {
		return nil
	}
	if err := c.persist(obs, &next, acts); err != nil {
		return err
	}
	c.setState(next)
	for _, a := range acts {
		c.perform(ctx, next, a)
	}
	if c.job != nil && (next.Job == nil || next.Job.Seq != c.job.seq) {
		// The state no longer requires it (an abort while pre_provision
		// hooks run): a job never runs on for a state that moved on.
		c.stopJob()
	}
	if d := ended(cur, next, acts); d != nil && c.opts.Finished != nil {
		c.opts.Finished(*d)
	}
	return nil
}

// ended returns the record of the deployment whose outcome became final
// between cur and next, or nil. The run stays in the state while its last
// work runs, so an outcome is final once and seen here once; an instant
// rollback starts and ends its run in one step, and a deployment that
// fails before its candidate starts (pre_provision) leaves the state in
// the step that ends it, its final record among acts.
func ended(cur, next State, acts []Action) *Deployment {
	if cur.Run != nil && cur.Run.Record.Outcome == OutcomeRunning && (next.Run == nil || next.Run.Record.ID != cur.Run.Record.ID) {
		for i := len(acts) - 1; i >= 0; i-- {
			if a := acts[i]; a.Kind == ActRecord && a.Deployment.ID == cur.Run.Record.ID {
				return a.Deployment
			}
		}
		return nil
	}
	if next.Run == nil || next.Run.Record.Outcome == OutcomeRunning {
		return nil
	}
	if cur.Run != nil && cur.Run.Record.ID == next.Run.Record.ID && cur.Run.Record.Outcome != OutcomeRunning {
		return nil
	}
	return &next.Run.Record
}

// persist saves the history records the actions carry, then the state.
// Records go first: a run that ends leaves the state, so a crash between
// the two writes must not lose its final record. A crash after the records
// leaves the old state, which resumes the run and saves them again (records
// are idempotent). Any failed write fails the step: nothing is acted on.
func (c *Controller) persist(obs Observation, next *State, acts []Action) error {
	for _, a := range acts {
		switch a.Kind {
		case ActRecord:
			if err := c.opts.Store.SaveDeployment(a.Deployment); err != nil {
				return fmt.Errorf("%s %s: persist history of deployment %s: %w", obs.Kind, c.cfg().Name, a.Deployment.ID, err)
			}
		case ActAppend:
			if err := c.appendEvent(*a.Event); err != nil {
				return fmt.Errorf("%s %s: %w", obs.Kind, c.cfg().Name, err)
			}
		}
	}
	if err := c.opts.Store.SaveState(c.cfg().Name, next); err != nil {
		return fmt.Errorf("%s %s: persist state: %w", obs.Kind, c.cfg().Name, err)
	}
	return nil
}

func (c *Controller) perform(ctx context.Context, st State, a Action) {
	switch a.Kind {
	case ActSetSplit:
		if err := c.opts.Router.SetSplit(a.Live, a.Weight); err != nil {
			c.log.Error("router refused the split", "color", a.Live, "weight", a.Weight, "err", err)
			if st.Run != nil && st.Phase == PhaseShifting && routerPauses(err) {
				c.queue(Observation{Kind: ObsPause, Actor: ActorController, Err: fmt.Sprintf("the router could not set %g%%: %v", a.Weight, err)})
			} else if st.Run != nil && st.Phase == PhaseShifting {
				c.PoolFailed(st.Run.Candidate.Color, st.Run.Candidate.Version, fmt.Errorf("router refused %g%%: %w", a.Weight, err))
			}
		} else {
			c.afterSplit(st)
		}
	case ActSetPreview:
		c.setPreview(a.Color)
	case ActRecord, ActAppend:
		// Saved by persist, before the state.
	case ActEmit:
		c.logEvent(*a.Event)
		if c.opts.Events != nil {
			c.opts.Events(*a.Event)
		}
	case ActRunJob:
		c.startJob(ctx, *a.Job, st)
	}
}

func (c *Controller) logEvent(ev Event) {
	if ev.Type == EventVerdict && ev.Verdict != nil && ev.Verdict.Result != ResultFail {
		c.log.Debug(ev.Message, "deployment", ev.Deployment, "type", ev.Type)
		return
	}
	args := []any{"deployment", ev.Deployment, "type", ev.Type, "phase", ev.Phase, "weight", ev.Weight, "actor", ev.Actor}
	if ev.Output != "" {
		args = append(args, "output", ev.Output)
	}
	c.log.Info(ev.Message, args...)
}

// appendEvent adds ev to the history record of a deployment that has
// ended (ev.Deployment), as post_retire hooks do long after it. A record
// that is gone (history pruned) is logged and skipped.
func (c *Controller) appendEvent(ev Event) error {
	d, found, err := c.opts.Store.Deployment(c.cfg().Name, ev.Deployment)
	if err != nil {
		return fmt.Errorf("read history of deployment %s: %w", ev.Deployment, err)
	}
	if !found {
		c.log.Warn("history record not found; event not recorded", "deployment", ev.Deployment, "type", ev.Type)
		return nil
	}
	d.Events = append(d.Events, ev)
	if err := c.opts.Store.SaveDeployment(&d); err != nil {
		return fmt.Errorf("persist history of deployment %s: %w", ev.Deployment, err)
	}
	return nil
}

// startJob cancels the running job, waits for it and starts j with the
// state it was required by.
func (c *Controller) startJob(ctx context.Context, j Job, st State) {
	c.stopJob()
	jctx, cancel := context.WithCancel(ctx)
	rj := &runningJob{seq: j.Seq, cancel: cancel, done: make(chan struct{})}
	c.job = rj
	go func() {
		defer close(rj.done)
		rj.detail, rj.err = c.runJob(jctx, j, st)
	}()
}

func (c *Controller) stopJob() {
	if c.job == nil {
		return
	}
	c.job.cancel()
	<-c.job.done
	c.job = nil
}

// countsOf is a convenience for jobs.
func (c *Controller) countsOf(color route.Color) metrics.Counts { return c.opts.Router.Counts(color) }
