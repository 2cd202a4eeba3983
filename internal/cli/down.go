package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/api/client"
	"github.com/cutover/cutover/internal/deploy"
)

// down and up take a service out of service and back. Both wait until
// the daemon has done it (the pools stopped; the live pool healthy and
// serving): a script's next line can rely on it.

const downHelp = `drain both colours of SERVICE (each for up to its drain_timeout), then stop
them; cutover down returns once they are stopped. The live release and the
previous pool stay recorded, so that cutover up starts them again. While a
service is down its public listener answers with the fallback page (503),
deploy, promote and rollback are refused, and a restarted daemon starts
nothing. Status shows "down": true.`

const upHelp = `start the live release of a service that is down and wait until the router
counts it healthy: then traffic flows and cutover up returns. If it does
not become healthy within start_timeout, what started is stopped again, the
service stays down and cutover up exits 1 with the reason. A previous pool
still kept for rollback is started after it.`

func (a *app) down(o *opts, pos []string) int {
	return a.downUp("down", o, pos[0])
}

func (a *app) up(o *opts, pos []string) int {
	return a.downUp("up", o, pos[0])
}

func (a *app) downUp(verb string, o *opts, service string) int {
	c := a.client()
	ctx, cancel := a.callCtx()
	call := c.Down
	if verb == "up" {
		call = c.Up
	}
	st, err := call(ctx, service)
	cancel()
	if err != nil {
		return a.fail(fmt.Errorf("%s %s: %w", verb, service, err))
	}
	if st, err = a.awaitDownUp(c, st); err != nil {
		return a.fail(fmt.Errorf("%s %s: %w", verb, service, err))
	}
	if verb == "up" && st.Down {
		return a.fail(fmt.Errorf("up %s: %s; the service stays down", service, a.lastUpReason(c, service)))
	}
	if o.json {
		return a.printJSON(st)
	}
	if verb == "down" {
		fmt.Fprintf(a.stdout, "%s: down; nothing runs and the public listener serves the fallback page; `cutover up %s` starts %s again\n",
			service, service, poolName(st.Live))
	} else {
		fmt.Fprintf(a.stdout, "%s: up; %s\n", service, summary(st))
	}
	return ExitOK
}

// awaitDownUp polls the status until the down's stop or the up's start is
// over. A daemon that stops answering for maxUnreachable ends the wait.
func (a *app) awaitDownUp(c *client.Client, st deploy.Status) (deploy.Status, error) {
	var failing time.Time
	for st.Stopping || st.Starting {
		if err := sleepCtx(a.ctx, pollInterval); err != nil {
			return st, fmt.Errorf("stopped waiting; the daemon goes on (`cutover status %s` shows it): %w", st.Service, err)
		}
		ctx, cancel := context.WithTimeout(a.ctx, pollTimeout)
		next, err := c.Status(ctx, st.Service)
		cancel()
		switch {
		case err == nil:
			st, failing = next, time.Time{}
		case failing.IsZero():
			failing = time.Now()
		case time.Since(failing) >= maxUnreachable:
			return st, err
		}
	}
	return st, nil
}

// lastUpReason is why the service's latest up failed, from its history.
func (a *app) lastUpReason(c *client.Client, service string) string {
	ctx, cancel := a.callCtx()
	defer cancel()
	if ds, err := c.History(ctx, service, 1); err == nil && len(ds) == 1 && ds[0].Outcome == deploy.OutcomeFailed {
		return ds[0].Reason
	}
	return "the live pool did not start"
}
