package docker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// backoffReset is how long a container must have run for its slot's
// restart delay to start again from RestartBackoff.
const backoffReset = 30 * time.Second

// hostStrikes is how many inspections in a row a host may fail before its
// container counts as lost (the router's passive ejection usually takes
// it out of rotation sooner).
const hostStrikes = 3

func (d *Driver) supervise(p *pool) {
	for slot := 1; slot <= len(p.slots); slot++ {
		p.wg.Go(func() { d.superviseSlot(p, slot) })
	}
}

func (d *Driver) superviseSlot(p *pool, slot int) {
	backoff := d.opts.RestartBackoff
	last := ""
	for {
		d.mu.Lock()
		in := p.slots[slot-1]
		d.mu.Unlock()
		if in != nil {
			why := d.watch(p, in)
			if p.ctx.Err() != nil {
				return
			}
			d.lost(p, in, why)
			last = fmt.Sprintf("instance %s on %s: %v; last output:\n%s", in.id, in.host.name, why, d.tail(d.ctx, in, 20))
			if time.Since(in.startedAt) > backoffReset {
				backoff = d.opts.RestartBackoff
			}
			d.bg.Go(func() { d.remove(d.ctx, in) }) // a host that is down may hold this up
		}
		// A slot that was empty from the start (Adopt found no container
		// for it) has not crashed: only an exit or a failed replacement
		// counts towards the crash loop.
		if (in != nil || last != "") && d.crashLooping(p, last) {
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

// watch inspects the container every WatchInterval until it is lost and
// returns why: it exited or was removed, its HEALTHCHECK turned
// unhealthy, or its host stopped answering. It returns nil when the pool
// stops.
func (d *Driver) watch(p *pool, in *instance) error {
	t := time.NewTicker(d.opts.WatchInterval)
	defer t.Stop()
	strikes := 0
	for {
		select {
		case <-p.ctx.Done():
			return nil
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(p.ctx, d.opts.PingTimeout)
		st, err := d.inspect(ctx, in)
		cancel()
		switch {
		case p.ctx.Err() != nil:
			return nil
		case err != nil:
			if strikes++; strikes >= hostStrikes {
				return fmt.Errorf("host %s stopped answering: %w", in.host.name, err)
			}
		case st.exit != nil:
			return st.exit
		case st.health == "unhealthy":
			return errors.New("its HEALTHCHECK reports it unhealthy")
		default:
			strikes = 0
		}
	}
}

// lost takes a container out of its pool and reports the smaller pool.
func (d *Driver) lost(p *pool, in *instance, why error) {
	d.mu.Lock()
	in.healthy = false
	p.slots[in.slot-1] = nil
	d.mu.Unlock()
	d.log.Warn("container lost", "color", p.color.String(), "version", p.version, "instance", in.id,
		"host", in.host.name, "container", shortID(in.cid), "err", why)
	d.report(p)
}

// crashLooping counts an exit; past CrashLoopRestarts within the window
// it fails the pool and tells the listener. It reports whether the slot
// must give up.
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
	d.log.Error("pool crash-looping, no longer replacing its containers", "color", p.color.String(),
		"version", p.version, "err", err)
	d.notifyMu.Lock()
	defer d.notifyMu.Unlock()
	d.listener.Failed(p.color, p.version, err)
	return true
}

// replace runs a new container in the slot, on the slot's own host when
// it answers and otherwise on the answering host with the fewest of the
// pool's containers, and gates it before reporting it. It returns why it
// failed, or "".
func (d *Driver) replace(p *pool, slot int) string {
	id := instanceID(d.name, p.color, slot)
	h := d.pickHost(p, slot)
	if h == nil {
		d.log.Error("cannot replace instance: no host answers", "color", p.color.String(), "instance", id)
		return fmt.Sprintf("instance %s could not be replaced: no host answers", id)
	}
	ctx, cancel := context.WithTimeout(p.ctx, d.opts.StartTimeout)
	defer cancel()
	if err := d.ensureImage(ctx, p.image, h); err != nil {
		return fmt.Sprintf("instance %s: %v", id, err)
	}
	in, err := d.launch(ctx, p, slot, h)
	if err == nil {
		if err = d.waitHealthy(ctx, in); err != nil {
			err = fmt.Errorf("%w; last output:\n%s", err, d.tail(d.ctx, in, 20))
			d.remove(d.ctx, in)
		}
	}
	if p.ctx.Err() != nil {
		// Stop removes what the pool holds, so a container it does not
		// hold yet is removed here; after Close it is left running, and
		// the next daemon's Adopt finds it by its labels.
		if err == nil && !d.isClosed() {
			d.remove(d.ctx, in)
		}
		return ""
	}
	if err != nil {
		d.log.Error("replacement failed", "color", p.color.String(), "version", p.version, "instance", id, "err", err)
		return fmt.Sprintf("instance %s: %v", id, err)
	}
	d.mu.Lock()
	in.healthy = true
	p.slots[slot-1] = in
	d.mu.Unlock()
	d.log.Info("instance replaced", "color", p.color.String(), "version", p.version, "instance", id,
		"host", h.name, "container", shortID(in.cid))
	d.report(p)
	return ""
}

func (d *Driver) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// pickHost chooses where a slot's replacement runs.
func (d *Driver) pickHost(p *pool, slot int) *host {
	ping := func(h *host) bool {
		ctx, cancel := context.WithTimeout(p.ctx, d.opts.PingTimeout)
		defer cancel()
		return h.ping(ctx) == nil
	}
	if h := d.slotHost(slot); ping(h) {
		return h
	}
	count := map[*host]int{}
	d.mu.Lock()
	for _, in := range p.slots {
		if in != nil {
			count[in.host]++
		}
	}
	d.mu.Unlock()
	var best *host
	for _, h := range d.hosts {
		if h == d.slotHost(slot) || !ping(h) {
			continue
		}
		if best == nil || count[h] < count[best] {
			best = h
		}
	}
	return best
}
