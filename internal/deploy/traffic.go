package deploy

import (
	"errors"
	"fmt"
	"time"
)

// This file is what the controller asks of a traffic router beyond
// Router: optional interfaces an engine outside the process implements
// (an ALB's listener weights, Route53 weighted records), which the
// embedded proxy does not need.

// Settler is a router whose weight change takes effect for clients some
// time after SetSplit has returned: DNS records are cached for their TTL.
// SetSplit itself returns once the engine has applied the change (Route53:
// the change is INSYNC). The controller starts a step's clock and its
// analysis window only SettleAfter later, and judges only what was served
// from then on.
type Settler interface {
	SettleAfter() time.Duration
}

// Lagged is a router whose Counts trail what its engine serves: the
// CloudWatch figures of a metric period are read only once the period has
// ended and CloudWatch has published it. The controller counts a quiet
// period on top of CountsLag: a pool that served a request just before
// the check began, or that still serves one every metric period, must
// not look quiet only because its figures are not out yet.
type Lagged interface {
	CountsLag() time.Duration
}

// countsLag is the router's Lagged lag, 0 for a router without one.
func (c *Controller) countsLag() time.Duration {
	if l, ok := c.opts.Router.(Lagged); ok {
		return max(l.CountsLag(), 0)
	}
	return 0
}

// TrafficReporter is a router that can say what its engine actually
// does, as last read from it (never waiting for it): status shows it
// beside the weights the controller intends.
type TrafficReporter interface {
	TrafficStatus() *TrafficStatus
}

// TrafficStatus is the engine's side of the split, as the router last read it.
type TrafficStatus struct {
	// Engine names it: "alb" or "route53".
	Engine string `json:"engine"`
	// Weights are the actual weights in percent per colour, as read.
	Weights map[string]float64 `json:"weights"`
	// Raw are the engine's own weight values per colour (ALB 0-999, Route53 0-255).
	Raw map[string]int64 `json:"raw,omitempty"`
	// ReadAt is when they were read; Written when cutover last wrote them.
	ReadAt  time.Time `json:"read_at,omitzero"`
	Written time.Time `json:"written,omitzero"`
	// Pending is set while a write the controller asked for has not been
	// made yet (the engine's API keeps failing); it says why.
	Pending string `json:"pending,omitempty"`
	// Drift is set when the engine's weights are not what cutover last
	// wrote (changed behind its back): cutover writes nothing until they
	// are set back.
	Drift string `json:"drift,omitempty"`
	// Alarms names the alarms in ALARM, with their reasons.
	Alarms []string `json:"alarms,omitempty"`
	// LoadBalancer5xx counts the answers the load balancers themselves
	// failed with a 5xx since the daemon started (CloudWatch's
	// HTTPCode_ELB_5XX_Count, published per load balancer: no colour is
	// named); nil until CloudWatch has been read.
	LoadBalancer5xx *uint64 `json:"load_balancer_5xx,omitempty"`
}

// PauseError is an error from Router.SetSplit after which the deployment
// is paused, not rolled back: the router could not make the change (its
// engine's API keeps failing, or its weights were changed behind
// cutover's back) and the engine still serves the split it had, which the
// analysis already judged; a rollback would need a write that fails the
// same way.
type PauseError struct {
	Err error
}

func (e *PauseError) Error() string { return e.Err.Error() }
func (e *PauseError) Unwrap() error { return e.Err }

// StillRoutedError is an error from Router.Drain: the engine outside the
// process still sends the colour traffic (the write that takes its weight
// away has not been made: the engine's API keeps failing, or its weights
// were changed behind cutover's back). The pool must not be stopped: the
// job that drains it is deferred and runs again later.
type StillRoutedError struct {
	Err error
}

func (e *StillRoutedError) Error() string { return e.Err.Error() }
func (e *StillRoutedError) Unwrap() error { return e.Err }

// routerPauses reports whether err from SetSplit asks for a pause.
func routerPauses(err error) bool {
	var pe *PauseError
	return errors.As(err, &pe)
}

// queue hands an observation of the executor's own to Run, after the
// current one: PoolFailed's queue, which Run drains in order.
func (c *Controller) queue(obs Observation) {
	c.failMu.Lock()
	c.failed = append(c.failed, obs)
	c.failMu.Unlock()
	select {
	case c.failWake <- struct{}{}:
	default:
	}
}

// afterSplit runs once SetSplit for next's weight succeeded: with a router
// that settles, the step's clock starts once its weights have reached the
// clients.
func (c *Controller) afterSplit(next State) {
	s, ok := c.opts.Router.(Settler)
	if !ok {
		return
	}
	d := s.SettleAfter()
	if r := next.Run; d <= 0 || r == nil || r.Step < 0 || (next.Phase != PhaseShifting && next.Phase != PhasePaused) {
		return
	}
	c.queue(Observation{Kind: ObsSettled, Actor: ActorController, Step: next.Run.Step, Settle: d})
}

// settled starts the current step's clock Settle after now: the router's
// change is applied, its clients follow within Settle.
func (t *txn) settled() {
	run := t.st.Run
	if run == nil || run.Step != t.ev.Step || (t.st.Phase != PhaseShifting && t.st.Phase != PhasePaused) {
		return
	}
	at := t.ev.Now.Add(t.ev.Settle)
	s := run.Steps[run.Step]
	run.StepStarted = at
	if !s.Manual {
		run.StepUntil = at.Add(s.Pause)
		run.Deadline = run.StepUntil.Add(t.st.Policy.ProgressDeadline)
	}
	run.NextAnalysis = at.Add(t.interval())
	run.SettleAt = at
	run.Verdict = nil
	t.event(EventStep, fmt.Sprintf("step %d (%g%%) applied by the router; its clock and analysis start at %s, after %s for clients' caches (TTL)",
		run.Step+1, t.st.Weight, at.UTC().Format(time.RFC3339), t.ev.Settle), nil)
}

// settleBase takes the analysis baseline once the step's weights have
// settled, so that only what was served after the TTL is judged.
func (t *txn) settleBase() {
	if run := t.st.Run; run != nil && !run.SettleAt.IsZero() && !t.ev.Now.Before(run.SettleAt) {
		run.Base = t.ev.Counts
		run.SettleAt = time.Time{}
	}
}
