package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/internal/api/client"
	"github.com/cutover/cutover/internal/deploy"
)

// pollInterval is how often deploy --wait reads the service's status.
const pollInterval = 300 * time.Millisecond

// maxUnreachable is how long the daemon may be unreachable (restarting,
// adopting its instances) before deploy --wait gives up.
const maxUnreachable = 60 * time.Second

// The backoff between attempts to open the event stream again after it
// dropped: it starts at minRedial and doubles up to maxRedial.
const (
	minRedial = 250 * time.Millisecond
	maxRedial = 5 * time.Second
)

// follower watches one deployment until it ends: it follows the event
// stream (opening it again, with backoff, when the daemon drops it),
// polls the status, and keeps p told. It lives on the goroutine of follow.
type follower struct {
	a *app
	c *client.Client
	d deploy.Deployment
	p progress

	events   <-chan deploy.Event
	streamed bool // the stream was open once: it is opened again when it drops
	// lastEvent is the time of the newest event shown, so that the events
	// missed while the stream was down can be shown from the record.
	lastEvent time.Time
	lostAt    time.Time // when the stream dropped; zero while it is open
	redial    time.Duration
	retry     <-chan time.Time // the next attempt to open the stream
	dialed    chan eventsDial  // the answer of an attempt under way
	failing   time.Time        // since when status polls fail; zero while they work
	polling   chan polled      // the answer of the status poll under way
	pollOnly  bool             // no event stream at all: polls report the daemon's comings and goings
	heartbeat *time.Timer      // when p may print its next heartbeat
	now       func() time.Time // time.Now; a field so that reading it is one place
	cancel    func()           // ends the attempts under way when follow returns
	done      func(deploy.Deployment) int
}

type eventsDial struct {
	ch  <-chan deploy.Event
	err error
}

// follow watches deployment d until it ends, feeding p with its events and
// the service's status, and returns the exit code of its outcome.
func (a *app) follow(ctx context.Context, c *client.Client, d deploy.Deployment, events <-chan deploy.Event, p progress) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &follower{a: a, c: c, d: d, p: p, events: events, streamed: events != nil, pollOnly: events == nil,
		now: time.Now, cancel: cancel}
	f.done = func(final deploy.Deployment) int { return a.done(p, final) }
	return f.run(ctx)
}

func (f *follower) run(ctx context.Context) int {
	f.p.start(f.d)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	f.heartbeat = time.NewTimer(time.Hour)
	defer f.heartbeat.Stop()
	f.armHeartbeat()
	for {
		select {
		case <-ctx.Done():
			f.p.stop()
			fmt.Fprintf(f.a.stderr, "cutover: stopped following deployment %s of %s; it continues (`cutover abort %s` stops it)\n",
				f.d.ID, f.d.Service, f.d.Service)
			return ExitError
		case ev, ok := <-f.events:
			if !ok {
				f.lost(ctx)
				continue
			}
			if code, end := f.event(ctx, ev); end {
				return code
			}
		case <-f.retry:
			f.dial(ctx)
		case r := <-f.dialed:
			f.dialedBack(ctx, r)
		case <-f.heartbeat.C:
			f.p.heartbeat(f.now(), f.offline())
			f.armHeartbeat()
		case <-tick.C:
			f.poll(ctx)
		case r := <-f.polling:
			if code, end := f.polledBack(ctx, r); end {
				return code
			}
		}
	}
}

// armHeartbeat sets the timer for p's next heartbeat, if p prints any.
func (f *follower) armHeartbeat() {
	if next := f.p.nextHeartbeat(); !next.IsZero() {
		f.heartbeat.Reset(max(next.Sub(f.now()), 10*time.Millisecond))
	}
}

// offline is how long the daemon has not answered a status poll, or 0.
// A dropped event stream alone is not offline: the polls still say where
// the deployment stands.
func (f *follower) offline() time.Duration {
	if f.failing.IsZero() {
		return 0
	}
	return f.now().Sub(f.failing)
}

// event shows one event of the stream; end is true when it ended the
// deployment, with the exit code.
func (f *follower) event(ctx context.Context, ev deploy.Event) (code int, end bool) {
	if ev.Deployment != f.d.ID {
		return 0, false
	}
	if ev.Time.After(f.lastEvent) {
		f.lastEvent = ev.Time
	}
	f.p.event(ev)
	f.armHeartbeat()
	if terminalEvent(ev.Type) {
		return f.a.finish(ctx, f.c, f.d, f.p, deploy.Outcome(ev.Type), ev.Message), true
	}
	return 0, false
}

// lost notes that the event stream ended (the daemon stopped) and plans
// the first attempt to open it again.
func (f *follower) lost(ctx context.Context) {
	f.events = nil
	if ctx.Err() != nil {
		return // the stream ended because following did
	}
	f.lostAt, f.redial = f.now(), minRedial
	f.p.notice(f.now(), "lost the daemon's event stream; reconnecting")
	f.armHeartbeat()
	f.retry = time.After(f.redial)
}

// dial tries to open the event stream again, off the loop, so that a
// daemon that accepts connections but does not answer holds up neither
// the heartbeat nor the status polls.
func (f *follower) dial(ctx context.Context) {
	f.retry = nil
	ch := make(chan eventsDial, 1) // buffered: the attempt never blocks on an ended follow
	f.dialed = ch
	go func() {
		events, err := f.c.Events(ctx, f.d.Service)
		ch <- eventsDial{events, err}
	}()
}

// dialedBack takes the answer of an attempt to open the stream: the
// stream is back, and the events it missed are shown from the record, or
// the next attempt is planned after a longer wait.
func (f *follower) dialedBack(ctx context.Context, r eventsDial) {
	f.dialed = nil
	if r.err != nil {
		if ctx.Err() == nil {
			f.redial = min(2*f.redial, maxRedial)
			f.retry = time.After(f.redial)
		}
		return
	}
	f.events = r.ch
	down := f.now().Sub(f.lostAt).Round(100 * time.Millisecond)
	f.lostAt = time.Time{}
	f.p.notice(f.now(), fmt.Sprintf("reconnected to the daemon's event stream after %s", down))
	f.replay(ctx)
	f.armHeartbeat()
}

// replay shows the deployment's recorded events newer than the last one
// shown: those that happened while the stream was down, such as the
// restarted daemon resuming the deployment. The end of the deployment is
// left to the status poll, which fetches the final record.
func (f *follower) replay(ctx context.Context) {
	cctx, cancel := f.a.callCtx()
	defer cancel()
	rec, err := f.c.Deployment(cctx, f.d.Service, f.d.ID)
	if err != nil {
		return // the polls go on; nothing is lost but the catch-up
	}
	for _, ev := range rec.Events {
		if ev.Time.After(f.lastEvent) && !terminalEvent(ev.Type) {
			f.lastEvent = ev.Time
			f.p.event(ev)
		}
	}
}

// pollTimeout bounds one status poll.
const pollTimeout = 10 * time.Second

// polled is the answer of one status poll: the status, and the final
// record when the status no longer shows the deployment.
type polled struct {
	st    deploy.Status
	final *deploy.Deployment
	err   error
}

// poll reads the service's status off the loop, unless a poll is under
// way, so that a daemon slow to answer never holds up the heartbeat.
func (f *follower) poll(ctx context.Context) {
	if f.polling != nil {
		return
	}
	ch := make(chan polled, 1) // buffered: the poll never blocks on an ended follow
	f.polling = ch
	go func() {
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		defer cancel()
		var r polled
		r.st, r.err = f.c.Status(pctx, f.d.Service)
		if r.err == nil && (r.st.Deployment == nil || r.st.Deployment.ID != f.d.ID) {
			// Ended, unless the controller has not shown it yet.
			if final, err := f.c.Deployment(pctx, f.d.Service, f.d.ID); err == nil && final.Outcome != deploy.OutcomeRunning {
				r.final = &final
			}
		}
		ch <- r
	}()
}

// polledBack takes a poll's answer; end is true when the deployment has
// ended or the daemon stayed away too long, with the exit code.
func (f *follower) polledBack(ctx context.Context, r polled) (code int, end bool) {
	f.polling = nil
	if r.err != nil {
		if ctx.Err() != nil {
			return 0, false
		}
		if f.failing.IsZero() {
			f.failing = f.now()
			if f.pollOnly {
				f.p.notice(f.now(), fmt.Sprintf("lost the daemon (%v); retrying", r.err))
			}
		}
		if f.now().Sub(f.failing) >= maxUnreachable {
			f.p.stop()
			return f.a.fail(fmt.Errorf("follow deployment %s of %s: no answer for %s: %w", f.d.ID, f.d.Service, maxUnreachable, r.err)), true
		}
		return 0, false
	}
	back := !f.failing.IsZero()
	if back && f.pollOnly {
		f.p.notice(f.now(), fmt.Sprintf("the daemon answers again after %s", f.now().Sub(f.failing).Round(100*time.Millisecond)))
	}
	f.failing = time.Time{}
	if back && f.streamed && f.events == nil && f.dialed == nil {
		// The daemon answers again: open the stream now rather than at
		// the end of the backoff.
		f.dial(ctx)
	}
	f.p.status(r.st)
	f.armHeartbeat()
	if r.final != nil {
		return f.done(*r.final), true
	}
	return 0, false
}
