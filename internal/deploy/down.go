package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// This file takes a service out of service and back (cutover down, cutover
// up). A down drains and stops both colours but keeps the state: live and
// the previous pool stay recorded, so that an up starts them again. While
// a service is down the router has no pool and answers with the fallback
// page; deployments, promotions and rollbacks are refused; a restarted
// daemon starts nothing (Serving is empty); and keep_previous does not
// retire the stopped previous pool (it is retired after the up if its time
// is over by then).

// The observations of a down and an up.
const (
	ObsDown ObsKind = "down"
	ObsUp   ObsKind = "up"
)

// The jobs of a down and an up.
const (
	// JobDown drains both colours, then stops them.
	JobDown JobKind = "down"
	// JobUp starts the live pool again and waits until the router counts
	// it healthy.
	JobUp JobKind = "up"
	// JobUpPrevious starts the kept previous pool again after an up, so
	// that a rollback is instant again; the service already serves.
	JobUpPrevious JobKind = "up_previous"
)

// The history outcomes and event types of a down and an up. A down or an
// up is recorded as a history record of its own (strategy "down" or
// "up"), as an instant rollback is.
const (
	OutcomeDown Outcome   = "down"
	OutcomeUp   Outcome   = "up"
	EventDown   EventType = "down"
	EventUp     EventType = "up"
)

const (
	strategyDown = "down"
	strategyUp   = "up"
)

// ErrDown refuses what a service that is down cannot do (deploy,
// promote, rollback, ...) and a second down; ErrNotDown refuses an up of a
// service that is not down.
var (
	ErrDown    = errors.New("service is down")
	ErrNotDown = errors.New("service is not down")
)

// Down is the persisted mark of a service taken out of service.
type Down struct {
	Since time.Time `json:"since"`
	// ID is the down's history record; what its job did is appended to it.
	ID string `json:"id"`
	// Up is the history record of the up under way, saved once the live
	// pool is healthy or the up failed.
	Up *Deployment `json:"up,omitempty"`
}

// clone returns a copy of d that shares nothing with it.
func (d *Down) clone() *Down {
	if d == nil {
		return nil
	}
	c := *d
	if d.Up != nil {
		up := *d.Up
		up.Events = slices.Clone(up.Events)
		c.Up = &up
	}
	return &c
}

// Down takes the service out of service: both colours are drained and
// stopped, and the public listener answers with the fallback page, until
// Up. It returns once the decision is persisted; the drain and stop run
// after it (Status reports Stopping meanwhile). It fails with ErrBusy
// while a deployment runs or finishes, ErrNoDeployment when nothing was
// ever live, and ErrDown when the service is already going down.
func (c *Controller) Down(ctx context.Context, actor string) error {
	now := c.opts.Now()
	_, err := c.do(ctx, Observation{Kind: ObsDown, Now: now, Actor: actorOr(actor), ID: c.newID(now)})
	return err
}

// Up brings a service that is down back: the live pool is started and
// health-gated, then traffic flows; the kept previous pool is started
// after it. It returns once the decision is persisted (Status reports
// Starting until the live pool is healthy, and Down until then). A down
// still stopping its pools is waited for, up to finishWait. It fails with
// ErrNotDown when the service is not down and ErrBusy while an up runs.
func (c *Controller) Up(ctx context.Context, actor string) error {
	deadline := time.Now().Add(finishWait)
	for {
		if err := c.awaitDownJob(ctx, deadline); err != nil {
			return fmt.Errorf("up %s: %w", c.cfg().Name, err)
		}
		now := c.opts.Now()
		_, err := c.do(ctx, Observation{Kind: ObsUp, Now: now, Actor: actorOr(actor), ID: c.newID(now)})
		if errors.Is(err, ErrBusy) && c.state().Job.kind() == JobDown && time.Now().Before(deadline) {
			continue
		}
		return err
	}
}

// awaitDownJob waits, until deadline, while a down drains and stops the pools.
func (c *Controller) awaitDownJob(ctx context.Context, deadline time.Time) error {
	return c.awaitState(ctx, deadline, func(st State) bool { return st.Down != nil && st.Job.kind() == JobDown })
}

// admitDown decides the commands a down concerns: a down and an up
// always, any other command while the service is down. handled is false
// for the rest, which Admit decides.
func admitDown(st State, ev Observation) (handled bool, err error) {
	op := fmt.Sprintf("%s %s", ev.Kind, st.Service)
	switch ev.Kind {
	case ObsDown:
		switch run := st.Run; {
		case run != nil && st.Phase != PhaseIdle:
			return true, fmt.Errorf("%s: %w: deployment %s (version %s) is %s; abort it first (`cutover abort %s`)",
				op, ErrBusy, run.Record.ID, run.Record.Version, st.Phase, st.Service)
		case run != nil || st.Job.kind() == JobPostRetire:
			return true, fmt.Errorf("%s: %w: %s; try again once it is done", op, ErrBusy, finishingWork(st))
		case st.Down != nil && st.Job.kind() == JobDown:
			return true, fmt.Errorf("%s: %w: already stopping its pools (since %s)", op, ErrDown, st.Down.Since.UTC().Format(time.RFC3339))
		case st.Down == nil && st.Live == nil:
			return true, fmt.Errorf("%s: %w: no version is live", op, ErrNoDeployment)
		}
		return true, nil
	case ObsUp:
		switch {
		case st.Down == nil:
			return true, fmt.Errorf("%s: %w", op, ErrNotDown)
		case st.Job.kind() == JobDown:
			return true, fmt.Errorf("%s: %w: the down is still stopping its pools", op, ErrBusy)
		case st.Down.Up != nil:
			return true, fmt.Errorf("%s: %w: already starting %s %s", op, ErrBusy, st.Live.Color, st.Live.Version)
		}
		return true, nil
	case ObsDeploy, ObsPromote, ObsPause, ObsResume, ObsAbort, ObsRollback:
		if st.Down != nil {
			if ev.Kind == ObsDeploy {
				op = fmt.Sprintf("deploy %s %s", st.Service, ev.Version)
			}
			return true, fmt.Errorf("%s: %w since %s; `cutover up %s` brings it back first",
				op, ErrDown, st.Down.Since.UTC().Format(time.RFC3339), st.Service)
		}
	}
	return false, nil
}

// finishingWork names the work of a finished deployment that still runs.
func finishingWork(st State) string {
	if st.Run != nil {
		return fmt.Sprintf("deployment %s (version %s) is finishing (%s)", st.Run.Record.ID, st.Run.Record.Version, st.Job.kind())
	}
	return fmt.Sprintf("the post_retire hooks of deployment %s are running", st.Job.Deployment)
}

// pools names the pools the state records (live, and previous while it is
// kept), as "blue v1 and green v0".
func (st State) pools() string {
	var names []string
	if st.Live != nil {
		names = append(names, st.Live.Color.String()+" "+st.Live.Version)
	}
	if p := st.Previous; p != nil {
		names = append(names, p.Color.String()+" "+p.Version)
	}
	if len(names) == 0 {
		return "both colours"
	}
	return strings.Join(names, " and ")
}

// down takes the service out of service, or, when it is down already
// (an up under way, or a down whose stop failed), stops its pools again.
func (t *txn) down() {
	ev := t.ev
	if d := t.st.Down; d != nil {
		if d.Up != nil {
			t.closeUp(OutcomeAborted, fmt.Sprintf("cancelled by a down by %s", ev.Actor))
		}
		t.appendTo(d.ID, EventDown, fmt.Sprintf("down again by %s: stopping %s", ev.Actor, t.st.pools()))
		t.job(Job{Kind: JobDown, Deployment: d.ID})
		return
	}
	// A retirement the down interrupts starts again after the up.
	t.st.Retiring = false
	t.st.Down = &Down{Since: ev.Now, ID: ev.ID}
	live := t.st.Live
	msg := fmt.Sprintf("taken down by %s: draining and stopping %s; `cutover up %s` starts %s again",
		ev.Actor, t.st.pools(), t.st.Service, live.Version)
	e := t.newEvent(EventDown, msg, nil)
	e.Deployment = ev.ID
	rec := Deployment{ID: ev.ID, Service: t.st.Service, Version: live.Version, Color: live.Color, Strategy: strategyDown,
		StartedAt: ev.Now, EndedAt: ev.Now, Outcome: OutcomeDown, Reason: fmt.Sprintf("taken down by %s", ev.Actor),
		Events: []Event{e}}
	t.acts = append(t.acts, Action{Kind: ActRecord, Deployment: &rec}, Action{Kind: ActEmit, Event: &e})
	t.job(Job{Kind: JobDown, Color: live.Color, Version: live.Version, Deployment: ev.ID})
}

// up starts the live pool of a service that is down.
func (t *txn) up() {
	ev, live := t.ev, *t.st.Live
	rec := &Deployment{ID: ev.ID, Service: t.st.Service, Version: live.Version, Color: live.Color, Strategy: strategyUp,
		StartedAt: ev.Now, Outcome: OutcomeRunning}
	t.st.Down.Up = rec
	t.upEvent(EventUp, fmt.Sprintf("up by %s: starting %s %s; traffic flows once it is healthy", ev.Actor, live.Color, live.Version))
	t.job(Job{Kind: JobUp, Color: live.Color, Version: live.Version, Deployment: ev.ID})
}

// upEvent adds an event to the record of the up under way and emits it.
func (t *txn) upEvent(typ EventType, msg string) {
	e := t.newEvent(typ, msg, nil)
	e.Deployment = t.st.Down.Up.ID
	t.st.Down.Up.Events = append(t.st.Down.Up.Events, e)
	t.acts = append(t.acts, Action{Kind: ActEmit, Event: &e})
}

// closeUp ends the up under way with outcome and saves its record.
func (t *txn) closeUp(outcome Outcome, why string) {
	rec := *t.st.Down.Up
	rec.Events = slices.Clone(rec.Events)
	rec.Outcome, rec.Reason, rec.EndedAt = outcome, why, t.ev.Now
	t.st.Down.Up = nil
	t.acts = append(t.acts, Action{Kind: ActRecord, Deployment: &rec})
}

// appendTo adds an event to the history record id (of a down or an up
// that has ended) and emits it.
func (t *txn) appendTo(id string, typ EventType, msg string) {
	e := t.newEvent(typ, msg, nil)
	e.Deployment = id
	t.acts = append(t.acts, Action{Kind: ActAppend, Event: &e}, Action{Kind: ActEmit, Event: &e})
}

// downJobDone takes the result of a down's or an up's job.
func (t *txn) downJobDone(j Job) {
	ev := t.ev
	switch j.Kind {
	case JobDown:
		msg := fmt.Sprintf("%s drained and stopped", t.st.pools())
		if ev.Err != "" {
			msg = fmt.Sprintf("stopping %s: %s; `cutover down %s` tries again", t.st.pools(), ev.Err, t.st.Service)
		}
		if t.st.Down != nil {
			t.appendTo(t.st.Down.ID, EventDown, msg)
		}
	case JobUp:
		if ev.Err != "" {
			why := fmt.Sprintf("start %s %s: %s", j.Color, j.Version, ev.Err)
			t.upEvent(EventFailed, why+"; stopping it again: the service stays down")
			t.closeUp(OutcomeFailed, why)
			t.job(Job{Kind: JobDown, Color: j.Color, Version: j.Version, Deployment: t.st.Down.ID})
			return
		}
		by := t.st.Down.Up.Events[0].Actor // the up's own event, recorded when it was asked for
		t.upEvent(EventUp, fmt.Sprintf("%s %s is healthy: traffic flows", j.Color, j.Version))
		t.closeUp(OutcomeUp, fmt.Sprintf("brought up by %s after %s down", by, ev.Now.Sub(t.st.Down.Since).Round(time.Second)))
		t.st.Down = nil
		t.split()
		if p := t.st.Previous; p != nil && ev.Now.Before(p.Until) {
			t.job(Job{Kind: JobUpPrevious, Color: p.Color, Version: p.Version, Deployment: j.Deployment})
			return
		}
		t.maybeRetire() // keep_previous ran out while the service was down
	case JobUpPrevious:
		p := t.st.Previous
		if p == nil {
			return
		}
		if ev.Err != "" {
			// Not kept as it is: it would be rolled back to while not
			// serving. Retired instead, post_retire hooks and all.
			t.appendTo(j.Deployment, EventRetired, fmt.Sprintf("previous %s %s did not start again (%s): retiring it; no instant rollback", p.Color, p.Version, ev.Err))
			t.st.Retiring = true
			t.job(Job{Kind: JobRetire, Color: p.Color, Version: p.Version})
			return
		}
		t.appendTo(j.Deployment, EventUp, fmt.Sprintf("previous %s %s is healthy again: rollback is instant until %s", p.Color, p.Version, p.Until.UTC().Format(time.RFC3339)))
		t.maybeRetire()
	}
}

// downPools is JobDown: both colours drained at once (each waits up to
// drain_timeout for its requests in flight), then both stopped.
func (c *Controller) downPools(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, col := range route.Colors {
		wg.Go(func() { _ = c.drain(ctx, col) }) // it reports only ctx's error, checked below
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err // the daemon stops: the persisted job runs again after a restart
	}
	var errs []error
	for _, col := range route.Colors {
		errs = append(errs, c.stop(ctx, col))
	}
	return errors.Join(errs...)
}

// downStatus adds the down's fields to a status.
func downStatus(s *Status, st State) {
	if st.Down == nil {
		return
	}
	s.Down, s.DownSince = true, st.Down.Since
	s.Stopping = st.Job.kind() == JobDown
	s.Starting = st.Down.Up != nil
}
