package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// healthPoll is how often a job looks at the router's health and counters.
const healthPoll = 100 * time.Millisecond

// runJob does one job's slow work. It returns a detail for history (hook
// output) and an error naming what failed. st is the state the Run
// goroutine started the job from: a job never reads the live state, which
// Run goes on changing.
func (c *Controller) runJob(ctx context.Context, j Job, st State) (string, error) {
	log := c.log.With("color", j.Color, "version", j.Version, "deployment", j.Deployment, "job", j.Kind)
	log.Debug("job started")
	hooks := c.cfg().Hooks
	switch j.Kind {
	case JobPreflight:
		return c.jobPreflight(ctx, j, st)
	case JobPreProvision:
		return c.jobHooks(ctx, j, st, hooks.PreProvision)
	case JobStart:
		return "", c.startPool(ctx, j, st)
	case JobPreTraffic:
		return c.jobHooks(ctx, j, st, hooks.PreTraffic)
	case JobPostTraffic:
		return c.jobHooks(ctx, j, st, hooks.PostTraffic)
	case JobPostPromote:
		return c.jobHooks(ctx, j, st, hooks.PostPromote)
	case JobPostRetire:
		return c.jobHooks(ctx, j, st, hooks.PostRetire)
	case JobRollback:
		// Checked before the hooks, so that they run once, when the
		// candidate is really cleaned up.
		if err := c.liveServes(j, "stopping"); err != nil {
			log.Warn("not stopping the candidate", "err", err)
			return "", err
		}
		detail, herr := c.jobHooks(ctx, j, st, hooks.OnRollback, "REASON="+j.Reason)
		return detail, errors.Join(herr, c.drainStop(ctx, j.Color, 0))
	case JobStop:
		// A first deployment has no live pool to fall back on.
		if st.Live != nil {
			if err := c.liveServes(j, "stopping"); err != nil {
				log.Warn("not stopping the candidate", "err", err)
				return "", err
			}
		}
		return "", c.drainStop(ctx, j.Color, 0)
	case JobDown:
		return "", c.downPools(ctx)
	case JobUp, JobUpPrevious:
		return "", c.startPool(ctx, j, st)
	case JobRetire:
		if err := c.liveServes(j, "draining"); err != nil {
			log.Warn("not retiring", "err", err)
			return "", err
		}
		// The quiet period is the deployment's policy, like the retry
		// after a failed retirement: a reload applies from the next
		// deployment on.
		return "", c.drainStop(ctx, j.Color, st.Policy.QuietPeriod)
	}
	return "", fmt.Errorf("unknown job %q", j.Kind)
}

// jobHooks runs a hook job's list (the kind is the job's): each hook that
// passes is persisted before the next starts (ObsHookDone), so a job run
// again after a restart resumes at the hook that was interrupted. A
// failure is logged here too, with the error; the event that records it
// carries the output.
func (c *Controller) jobHooks(ctx context.Context, j Job, st State, list []Hook, env ...string) (string, error) {
	kind := string(j.Kind)
	if j.Kind == JobRollback {
		kind = "on_rollback"
	}
	var base []string
	if len(list) > 0 {
		var err error
		if base, err = c.hookEnv(j); err != nil {
			c.log.Error(kind+" hooks cannot run", "color", j.Color, "version", j.Version, "deployment", j.Deployment, "err", err)
			return "", fmt.Errorf("%s hooks: %w", kind, err)
		}
	}
	call := hookCall{kind: kind, job: j, env: append(base, env...), body: c.webhookBody(kind, j, st),
		passed: func(ctx context.Context, i int, msg, output string) {
			c.report(ctx, Observation{Kind: ObsHookDone, Job: j.Seq, Hook: i + 1, Detail: msg, Output: output})
		}}
	detail, err := c.runHooks(ctx, call, list)
	if err != nil && ctx.Err() == nil {
		c.log.Error(kind+" hook failed", "color", j.Color, "version", j.Version, "deployment", j.Deployment, "err", err)
	}
	return detail, err
}

// liveServes returns a *liveDownError when the live colour (the other one)
// has no healthy instance while the job's pool has some: the router then
// serves that pool as the only healthy one, and draining or stopping it
// would leave every request to the fallback page (invariant 2). The
// controller runs the job again later. verb says what is not done.
func (c *Controller) liveServes(j Job, verb string) error {
	live := j.Color.Other()
	healthy, total := c.opts.Router.Healthy(live)
	if own, _ := c.opts.Router.Healthy(j.Color); healthy > 0 || own == 0 {
		return nil
	}
	return &liveDownError{fmt.Sprintf("not %s %s %s: live %s has 0 of %d instances healthy", verb, j.Color, j.Version, live, total)}
}

// liveDownError is a job's refusal to take away the only healthy pool;
// the executor reports it as a deferred job (Observation.Deferred).
type liveDownError struct{ msg string }

func (e *liveDownError) Error() string { return e.msg }

// startPool starts the candidate and waits until the router counts at
// least one of its instances healthy (the health gate before any traffic).
func (c *Controller) startPool(ctx context.Context, j Job, st State) error {
	timeout := c.cfg().StartTimeout
	if j.Replaces != "" && !c.runs(j.Color, j.Version) {
		// Runtime.Start stops another version at once; its requests in
		// flight and streams (and preview traffic) get the drain first.
		if err := c.drain(ctx, j.Color); err != nil {
			return err
		}
	}
	// A candidate runs its deployment's env; a pool brought back up runs
	// the env its release was promoted with.
	rel := runtime.Release{Version: j.Version, Env: st.ColorEnv[j.Color&1]}
	if r := st.Run; j.Kind == JobStart && r != nil {
		rel.Env = r.Env
	}
	if _, err := c.opts.Runtime.Start(ctx, j.Color, rel); err != nil {
		return err
	}
	c.opts.Router.Undrain(j.Color)
	gctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(healthPoll)
	defer tick.Stop()
	for {
		healthy, total := c.opts.Router.Healthy(j.Color)
		if healthy > 0 {
			return nil
		}
		select {
		case <-gctx.Done():
			return fmt.Errorf("health gate for %s: %d of %d instances healthy in the router after %s: %w", j.Color, healthy, total, timeout, gctx.Err())
		case <-tick.C:
		}
	}
}

// runs reports whether the runtime says the colour already runs version
// (a start job run again after a restart), so that the candidate itself is
// not drained.
func (c *Controller) runs(color route.Color, version string) bool {
	ins := c.opts.Runtime.Instances(color)
	return len(ins) > 0 && ins[0].Version == version
}

// drainStop drains the colour, waits until it has served no request for
// quiet (0: not at all), then stops it. A colour the router reports sealed
// after the drain needs no quiet period: no request can reach it. When ctx
// ends first (the daemon shuts down) it stops nothing and returns ctx's
// error: the pool may still have requests in flight, and the persisted job
// runs again after a restart.
func (c *Controller) drainStop(ctx context.Context, color route.Color, quiet time.Duration) error {
	if err := c.drain(ctx, color); err != nil {
		return err
	}
	if quiet > 0 && c.opts.Router.Sealed(color) {
		c.log.Info("drained colour is sealed: stopping it without waiting for the quiet period", "color", color, "quiet_period", quiet)
	} else if quiet > 0 {
		if lag := c.countsLag(); lag > 0 {
			c.log.Info("waiting for the quiet period on top of the router's counts lag", "color", color, "quiet_period", quiet, "lag", lag)
			quiet += lag
		}
		if err := c.waitQuiet(ctx, color, quiet); err != nil {
			return err
		}
	}
	return c.stop(ctx, color)
}

// drain takes the colour out of rotation and waits, at most DrainTimeout,
// for its requests in flight. It returns ctx's error only: an incomplete
// drain is logged, since past the timeout the pool is stopped anyway.
func (c *Controller) drain(ctx context.Context, color route.Color) error {
	timeout := c.cfg().DrainTimeout
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.opts.Router.Drain(dctx, color); err != nil && ctx.Err() == nil {
		var sr *StillRoutedError
		if errors.As(err, &sr) {
			// The engine still sends it traffic: stopping it would fail
			// those requests while a live pool waits for them. The job is
			// deferred and runs again. Without a live pool (a first
			// deployment that failed) there is nothing to wait for.
			if st := c.state(); st.Live != nil && st.Live.Color != color {
				c.log.Warn("not stopping a colour the router still sends traffic", "color", color, "err", err)
				return &liveDownError{fmt.Sprintf("not stopping %s: %v", color, err)}
			}
			c.log.Warn("the router still sends the colour traffic, but no other pool is live: stopping it", "color", color, "err", err)
		}
		// Past the drain timeout the pool is stopped anyway, as promised.
		c.log.Warn("drain incomplete", "color", color, "err", err)
	}
	return ctx.Err()
}

func (c *Controller) stop(ctx context.Context, color route.Color) error {
	if err := c.opts.Runtime.Stop(ctx, color); err != nil {
		return fmt.Errorf("stop %s: %w", color, err)
	}
	return nil
}

// waitQuiet returns once the colour has served no request and has had none
// in flight for quiet.
func (c *Controller) waitQuiet(ctx context.Context, color route.Color, quiet time.Duration) error {
	last := c.countsOf(color)
	since := c.opts.Now()
	tick := time.NewTicker(min(healthPoll*10, max(quiet/10, healthPoll)))
	defer tick.Stop()
	for {
		now := c.opts.Now()
		cur := c.countsOf(color)
		if cur.Requests != last.Requests || cur.InFlight > 0 {
			last, since = cur, now
		}
		if now.Sub(since) >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
