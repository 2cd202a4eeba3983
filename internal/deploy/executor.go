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
		case <-jobDone:
			j := c.job
			c.job = nil
			obs := Observation{Kind: ObsJobDone, Job: j.seq, Detail: j.detail}
			if j.err != nil {
				obs.Err = j.err.Error()
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
	if r := st.Run; r != nil && st.Phase == PhaseRollingBack {
		earliest(r.RetryAt)
	}
	if st.Run == nil && st.Job == nil && st.Previous != nil && !st.Retiring {
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
	cur := c.state()
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
	if d := ended(cur, next); d != nil && c.opts.Finished != nil {
		c.opts.Finished(*d)
	}
	return nil
}

// ended returns the record of the deployment whose outcome became final
// between cur and next, or nil. The run stays in the state while its last
// work runs, so an outcome is final once and seen here once; an instant
// rollback starts and ends its run in one step.
func ended(cur, next State) *Deployment {
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
		if a.Kind != ActRecord {
			continue
		}
		if err := c.opts.Store.SaveDeployment(a.Deployment); err != nil {
			return fmt.Errorf("%s %s: persist history of deployment %s: %w", obs.Kind, c.cfg().Name, a.Deployment.ID, err)
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
			if st.Run != nil && st.Phase == PhaseShifting {
				c.PoolFailed(st.Run.Candidate.Color, st.Run.Candidate.Version, fmt.Errorf("router refused %g%%: %w", a.Weight, err))
			}
		}
	case ActSetPreview:
		c.setPreview(a.Color)
	case ActRecord:
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
	c.log.Info(ev.Message, "deployment", ev.Deployment, "type", ev.Type, "phase", ev.Phase, "weight", ev.Weight, "actor", ev.Actor)
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
