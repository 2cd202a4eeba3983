package process

import (
	"context"
	"fmt"
	"time"
)

// backoffReset is how long an instance must have run for its slot's restart
// delay to start again from Options.RestartBackoff.
const backoffReset = 30 * time.Second

// supervise starts one goroutine per slot that replaces the slot's instance
// whenever it exits without being asked to.
func (d *Driver) supervise(p *pool) {
	for slot := 1; slot <= len(p.slots); slot++ {
		p.wg.Go(func() { d.superviseSlot(p, slot) })
	}
}

func (d *Driver) superviseSlot(p *pool, slot int) {
	backoff := d.opts.RestartBackoff
	last := "" // what the slot's last failure said, for the crash-loop report
	for {
		d.mu.Lock()
		in, kept := p.slotAt(slot)
		d.mu.Unlock()
		if !kept { // removed by Scale
			return
		}
		if in != nil {
			select {
			case <-p.ctx.Done():
				return
			case <-in.done:
			}
			if p.ctx.Err() != nil {
				return
			}
			// stopping is read first: evicted is set before it.
			switch stopping, evicted := in.stopping.Load(), in.evicted.Load(); {
			case evicted:
				d.evicted(p, in)
				last = fmt.Sprintf("adopted instance %s was not healthy within the start timeout; last output:\n%s", in.id, d.tail(in, 20))
			case stopping:
				return
			default:
				d.lost(p, in)
				last = fmt.Sprintf("instance %s exited (%v); last output:\n%s", in.id, in.exitErr, d.tail(in, 20))
				if time.Since(in.startedAt) > backoffReset {
					backoff = d.opts.RestartBackoff
				}
			}
		}
		if d.crashLooping(p, last) {
			return
		}
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, d.opts.MaxRestartBackoff)
		last = d.replace(p, slot)
	}
}

// lost takes an exited instance out of the pool, reports the smaller pool
// and kills whatever the instance left behind in its process group.
func (d *Driver) lost(p *pool, in *instance) {
	d.mu.Lock()
	in.healthy = false
	p.clearSlot(in)
	d.mu.Unlock()
	d.log.Warn("instance exited", "color", p.color.String(), "version", p.version,
		"instance", in.id, "err", in.exitErr)
	d.report(p)
	d.terminate(context.Background(), in)
	d.persist()
}

// evicted empties the slot of an adopted instance that gateLate stopped
// for not becoming healthy; it never served, so the pool is not reported.
func (d *Driver) evicted(p *pool, in *instance) {
	d.mu.Lock()
	p.clearSlot(in)
	d.mu.Unlock()
	d.persist()
}

// crashLooping counts an exit and, once the pool has exited more than
// CrashLoopRestarts times inside CrashLoopWindow, marks it failed and tells
// the listener. It reports whether the slot must give up.
func (d *Driver) crashLooping(p *pool, last string) bool {
	now := time.Now()
	d.mu.Lock()
	if p.failed != nil {
		d.mu.Unlock()
		return true
	}
	n := p.exits.Add(now, d.opts.CrashLoopWindow)
	if n <= d.opts.CrashLoopRestarts {
		d.mu.Unlock()
		return false
	}
	err := fmt.Errorf("service %s: %s %s is crash-looping: %d exits within %s; %s",
		d.name, p.color, p.version, n, d.opts.CrashLoopWindow, last)
	p.failed = err
	d.mu.Unlock()
	d.log.Error("pool crash-looping, no longer restarting it", "color", p.color.String(),
		"version", p.version, "err", err)
	d.persist()
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	d.listener.Failed(p.color, p.version, err)
	return true
}

// replace launches a new instance in the slot and health-gates it before
// reporting it. A replacement that fails leaves the slot empty, which the
// slot's supervisor counts as another exit; replace then returns why.
func (d *Driver) replace(p *pool, slot int) string {
	in, err := d.launch(p, slot)
	if err != nil {
		id := instanceID(d.name, p.color, slot)
		d.log.Error("cannot replace instance", "color", p.color.String(), "version", p.version,
			"instance", id, "err", err)
		return fmt.Sprintf("instance %s could not be launched: %v", id, err)
	}
	d.mu.Lock()
	_, kept := p.slotAt(slot)
	if kept {
		p.slots[slot-1] = in
	}
	d.mu.Unlock()
	if !kept { // Scale removed the slot while this one launched
		d.terminate(context.Background(), in)
		return ""
	}
	d.persist()
	ctx, cancel := context.WithTimeout(p.ctx, d.startTimeout())
	err = d.gateNow().WaitHealthy(ctx, in.addr(), in.done)
	cancel()
	if p.ctx.Err() != nil {
		return "" // Stop terminates it; Close leaves it for the next daemon
	}
	if err != nil {
		err = d.instanceError(in, err)
		d.log.Error("replacement not healthy", "color", p.color.String(), "version", p.version,
			"instance", in.id, "err", err)
		d.mu.Lock()
		p.clearSlot(in)
		d.mu.Unlock()
		d.terminate(context.Background(), in)
		d.persist()
		return err.Error()
	}
	d.mu.Lock()
	in.healthy = true
	d.mu.Unlock()
	d.log.Info("instance replaced", "color", p.color.String(), "version", p.version,
		"instance", in.id, "pid", in.pid)
	d.report(p)
	return ""
}
