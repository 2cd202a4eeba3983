package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/client"
	"github.com/cutover/cutover/internal/deploy"
)

func (a *app) deploy(o *opts, pos []string) int {
	service, version := pos[0], pos[1]
	if o.dryRun {
		return a.dryRun(o, service, version)
	}
	env, err := releaseEnv(o.envFile, o.env)
	if err != nil {
		return a.usageError(nil, fmt.Sprintf("deploy %s %s: %v", service, version, err))
	}
	c := a.client()

	// Subscribe before starting, so that no event of the deployment is missed.
	var events <-chan deploy.Event
	followCtx, stopFollow := context.WithCancel(a.ctx)
	defer stopFollow()
	if o.wait {
		ch, err := c.Events(followCtx, service)
		var unreachable *client.UnreachableError
		switch {
		case errors.As(err, &unreachable):
			return a.fail(err)
		case err != nil:
			// Events unavailable (an older daemon, a proxy): poll only.
			fmt.Fprintf(a.stderr, "cutover: no event stream (%v); following by polling\n", err)
		default:
			events = ch
		}
	}

	ctx, cancel := a.callCtx()
	d, err := c.DeployRelease(ctx, service, api.DeployRequest{Version: version, Strategy: o.strategy, Env: env, AllowDrift: o.allowDrift})
	cancel()
	if err != nil {
		return a.fail(fmt.Errorf("deploy %s %s: %w", service, version, err))
	}
	if !o.wait {
		if o.json {
			return a.printJSON(d)
		}
		fmt.Fprintf(a.stdout, "%s: deploying %s to %s (deployment %s); follow with: cutover status %s\n",
			service, version, d.Color, d.ID, service)
		return ExitOK
	}
	p := a.newProgress(o.json, d, events == nil)
	return a.follow(followCtx, c, d, events, p)
}

// terminalEvent reports whether an event type ends a deployment.
func terminalEvent(typ deploy.EventType) bool {
	switch deploy.Outcome(typ) {
	case deploy.OutcomePromoted, deploy.OutcomeRolledBack, deploy.OutcomeAborted, deploy.OutcomeFailed:
		return true
	}
	return false
}

// finish fetches the final record of a deployment that an event said has
// ended; if the daemon cannot give it, the event's outcome stands.
func (a *app) finish(ctx context.Context, c *client.Client, d deploy.Deployment, p progress, outcome deploy.Outcome, reason string) int {
	for range 10 {
		final, err := c.Deployment(ctx, d.Service, d.ID)
		if err == nil && final.Outcome != deploy.OutcomeRunning {
			return a.done(p, final)
		}
		if err != nil || sleepCtx(ctx, 100*time.Millisecond) != nil {
			break // the event's outcome stands
		}
		// The history record may trail the event by a moment.
	}
	d.Outcome, d.Reason = outcome, reason
	return a.done(p, d)
}

func (a *app) done(p progress, d deploy.Deployment) int {
	p.done(d)
	switch d.Outcome {
	case deploy.OutcomePromoted:
		return ExitOK
	case deploy.OutcomeRolledBack, deploy.OutcomeAborted, deploy.OutcomeFailed:
		return ExitRollback
	}
	return ExitError
}

// sleepCtx waits for d or until ctx is done, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
