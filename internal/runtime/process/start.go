package process

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// startPool launches the pool's instances in slot order, at most
// Options.Parallel at a time, each health-gated before its place goes to
// the next slot (see startSlot): with the default of one, an app that
// migrates its schema at start does so once, in the first instance, before
// any other starts. The pool is published, and recorded, from its first
// launch on, so that a daemon that crashes meanwhile leaves its instances
// recorded. Once one slot fails, no further slot starts, those still
// starting are given up, everything launched is stopped, and the error
// (a *startError) tells what happened to every slot.
func (d *Driver) startPool(ctx context.Context, c route.Color, rel runtime.Release) error {
	n, parallel := d.size()
	version := rel.Version
	p := d.newPool(c, rel, n)
	d.mu.Lock()
	d.pools[c] = p
	d.mu.Unlock()

	ctx, giveUp := context.WithCancelCause(ctx)
	defer giveUp(nil)
	// Close ends the driver's pools; one that is still starting is given up.
	stop := context.AfterFunc(p.ctx, func() { giveUp(errors.New("driver closed")) })
	defer stop()

	results := make([]slotStart, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for slot := 1; slot <= n; slot++ {
		results[slot-1] = slotStart{id: instanceID(d.name, c, slot), state: slotNotStarted}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		if ctx.Err() != nil { // both were ready
			<-sem
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r := d.startSlot(ctx, p, slot)
			results[slot-1] = r
			if r.failed() {
				giveUp(fmt.Errorf("instance %s failed", r.id))
			}
		})
	}
	wg.Wait()

	if err := startFailure(results, context.Cause(ctx)); err != nil {
		d.abandon(p)
		return err
	}
	d.mu.Lock()
	for _, in := range p.slots {
		// One that passed its check and exited while later slots started is
		// left to its slot's supervisor, which replaces it.
		in.healthy = !in.exited()
	}
	d.mu.Unlock()
	d.log.Info("pool healthy", "color", c.String(), "version", version, "instances", n)
	d.report(p)
	d.supervise(p)
	return nil
}

// slotState is what became of one slot during a pool's start.
type slotState int

const (
	slotNotStarted slotState = iota // an earlier slot failed first
	slotHealthy
	slotGivenUp      // still starting when another slot failed or the start was cancelled
	slotExited       // exited before it was healthy, too often or until the start timeout
	slotNotHealthy   // alive but not healthy within the start timeout
	slotLaunchFailed // could not be launched (command, directory, env_file, secret, port)
	slotRecordFailed // launched, but the instance record could not be written
)

// slotStart is the story of one slot's start, for the start's error.
type slotStart struct {
	id       string
	state    slotState
	in       *instance // the slot's last process; nil if none was launched
	exits    int       // how often the slot's processes exited before being healthy
	lastExit error     // how the last of them exited
	err      error     // why the slot failed or was given up: a probe, a launch, a record error
	tail     string    // the last output of in, read before any relaunch appends to its log
}

func (r slotStart) failed() bool { return r.state > slotGivenUp }

// startSlot launches the slot's instance and waits, within the start
// timeout, until it passes its health check. An instance that exits before
// that is replaced with backoff (Options.RestartBackoff, doubling up to
// MaxRestartBackoff) like one that exits later, so that an app that exits
// once, say on losing a migration race, does not fail the pool; one that
// exits more than CrashLoopRestarts times fails the slot at once rather
// than at the start timeout. A launch that fails (a missing command,
// env_file or secret) is not retried.
func (d *Driver) startSlot(ctx context.Context, p *pool, slot int) slotStart {
	r := slotStart{id: instanceID(d.name, p.color, slot)}
	sctx, cancel := context.WithTimeoutCause(ctx, d.startTimeout(),
		fmt.Errorf("start timeout %s passed", d.startTimeout()))
	defer cancel()
	// ended says why sctx is done: the caller gave the start up, or the
	// slot's own start timeout passed.
	ended := func(own slotState) slotState {
		if ctx.Err() != nil {
			return slotGivenUp
		}
		return own
	}
	backoff := d.opts.RestartBackoff
	for {
		in, err := d.launch(p, slot)
		if err != nil {
			r.state, r.err = slotLaunchFailed, err
			return r
		}
		r.in = in
		d.mu.Lock()
		p.slots[slot-1] = in
		d.mu.Unlock()
		if err := d.persist(); err != nil {
			r.state, r.err, r.tail = slotRecordFailed, err, d.tail(in, 20)
			return r
		}
		err = d.gateNow().WaitHealthy(sctx, in.addr(), in.done)
		if err == nil {
			r.state = slotHealthy
			return r
		}
		r.tail = d.tail(in, 20)
		if !in.exited() {
			r.state, r.err = ended(slotNotHealthy), err
			return r
		}
		r.exits++
		r.lastExit = in.exitErr
		d.log.Warn("instance exited before it was healthy", "color", p.color.String(), "version", p.version,
			"instance", in.id, "pid", in.pid, "exits", r.exits, "err", in.exitErr)
		d.mu.Lock()
		p.slots[slot-1] = nil
		d.mu.Unlock()
		d.terminate(context.Background(), in) // what it left in its group, and its port
		d.persist()
		if r.exits > d.opts.CrashLoopRestarts {
			r.state = slotExited
			return r
		}
		t := time.NewTimer(backoff)
		select {
		case <-sctx.Done():
			t.Stop()
			r.state, r.err = ended(slotExited), context.Cause(sctx)
			return r
		case <-t.C:
		}
		backoff = min(2*backoff, d.opts.MaxRestartBackoff)
	}
}

// startError is a pool start that failed: what became of every slot.
type startError struct {
	slots []slotStart
	cause error // the first failed slot's error, or why the start was given up
}

// startFailure returns nil when every slot is healthy, else the
// *startError; cause is why the start was given up, if it was.
func startFailure(slots []slotStart, cause error) error {
	e := &startError{slots: slots}
	ok := true
	for _, r := range slots {
		if r.state != slotHealthy {
			ok = false
		}
		if e.cause == nil && r.failed() {
			e.cause = r.err
			if e.cause == nil {
				e.cause = r.lastExit
			}
		}
	}
	if ok {
		return nil
	}
	if e.cause == nil {
		e.cause = cause
	}
	return e
}

func (e *startError) Unwrap() error { return e.cause }

// Error says first which instances failed and how, then what became of
// each slot, with the last output of those that failed or were given up:
//
//	instance web-green-2 exited 6 times before it was healthy, the last time with exit code 3 (of 3 instances: 1 healthy, 1 failed, 1 not started)
//	  web-green-1 (pid 4242, port 30001): healthy
//	  web-green-2 (pid 4250, port 30003), last output:
//	    | app: migrate: duplicate key value violates unique constraint ...
//	  web-green-3: not started
func (e *startError) Error() string {
	var failed []string
	count := map[string]int{}
	for _, r := range e.slots {
		count[r.state.word()]++
		if r.failed() {
			failed = append(failed, "instance "+r.id+" "+r.summary())
		}
	}
	var b strings.Builder
	if len(failed) > 0 {
		b.WriteString(strings.Join(failed, "; "))
	} else {
		fmt.Fprintf(&b, "start given up: %v", e.cause)
	}
	var tally []string
	for _, w := range []string{"healthy", "failed", "still starting", "not started"} {
		if count[w] > 0 {
			tally = append(tally, fmt.Sprintf("%d %s", count[w], w))
		}
	}
	of := fmt.Sprintf("%d instances", len(e.slots))
	if len(e.slots) == 1 {
		of = "1 instance"
	}
	fmt.Fprintf(&b, " (of %s: %s)", of, strings.Join(tally, ", "))
	// Then every slot not told of yet, and the last output of those that
	// failed or were given up.
	for _, r := range e.slots {
		if r.failed() && r.tail == "" {
			continue
		}
		b.WriteString("\n  ")
		b.WriteString(r.id)
		if r.in != nil {
			fmt.Fprintf(&b, " (pid %d, port %d)", r.in.pid, r.in.port)
		}
		if !r.failed() {
			b.WriteString(": ")
			b.WriteString(r.summary())
		}
		if r.tail != "" && r.state != slotHealthy {
			if r.failed() {
				b.WriteString(", last output:")
			} else {
				b.WriteString("; last output:")
			}
			for line := range strings.SplitSeq(r.tail, "\n") {
				b.WriteString("\n    | ")
				b.WriteString(line)
			}
		}
	}
	return b.String()
}

// word is the slot's state in the error's tally.
func (s slotState) word() string {
	switch s {
	case slotHealthy:
		return "healthy"
	case slotGivenUp:
		return "still starting"
	case slotNotStarted:
		return "not started"
	}
	return "failed"
}

// summary says what became of the slot, in a phrase after its name.
func (r slotStart) summary() string {
	exited := ""
	if r.exits > 0 {
		how := fmt.Sprint(r.lastExit)
		if !strings.HasPrefix(how, "killed") {
			how = "with " + how
		}
		exited = fmt.Sprintf("exited before it was healthy, %s", how)
		if r.exits > 1 {
			exited = fmt.Sprintf("exited %d times before it was healthy, the last time %s", r.exits, how)
		}
	}
	switch r.state {
	case slotHealthy:
		if exited != "" {
			return "healthy after it " + exited
		}
		return "healthy"
	case slotNotStarted:
		return "not started"
	case slotLaunchFailed:
		return fmt.Sprintf("could not be launched: %v", r.err)
	case slotRecordFailed:
		return fmt.Sprintf("launched, but not recorded: %v", r.err)
	case slotExited:
		if r.err != nil { // the start timeout passed while it waited to be restarted
			return fmt.Sprintf("%s; not restarted again: %v", exited, r.err)
		}
		return exited
	case slotNotHealthy:
		if exited != "" {
			return fmt.Sprintf("%s, then was running but %v", exited, r.err)
		}
		return fmt.Sprintf("was running but %v", r.err)
	default: // slotGivenUp
		s := "was still starting"
		if exited != "" {
			s = exited + ", then " + s
		}
		var nh *runtime.NotHealthyError
		if errors.As(r.err, &nh) {
			if nh.LastProbe != nil {
				s += fmt.Sprintf(" (last probe: %v)", nh.LastProbe)
			}
			return fmt.Sprintf("%s when the start was given up: %v", s, nh.Cause)
		}
		return fmt.Sprintf("%s when the start was given up: %v", s, r.err)
	}
}
