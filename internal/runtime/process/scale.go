package process

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// Scale makes n the number of instances per colour, for the pools that run
// now and for every pool started later (a configuration reload of
// `instances`). It works on one colour at a time, each under that colour's
// Start/Stop lock, so it waits for a pool that is still starting.
//
// A pool that grows starts its new slots Options.Parallel at a time and
// health-gates every one of them before any is reported: the router sees
// the larger pool only once all of it is healthy. When one of them fails,
// every instance the scale started is stopped again, the pool keeps its
// old size and the error names the instance and why (the pools of the
// other colour are still scaled; n stays the size of later pools).
//
// A pool that shrinks loses its highest slots: they are reported gone at
// once (the router takes them out of rotation and drains them), drained is
// called with their IDs and must return once the router has finished
// their in-flight requests (bounded by its drain timeout), and only then
// are they stopped. Until they are stopped they stay in the record file,
// so a daemon that crashes meanwhile adopts them instead of orphaning
// them. A failed pool (crash loop) changes size without starting anything.
func (d *Driver) Scale(ctx context.Context, n int, drained func(ctx context.Context, ids []string)) error {
	if n < 1 {
		return fmt.Errorf("service %s: scale to %d instances: at least 1 is needed", d.name, n)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("service %s: scale to %d instances: driver closed", d.name, n)
	}
	d.opts.Instances = n
	d.mu.Unlock()
	var errs []error
	for _, c := range route.Colors {
		if err := d.scaleColor(ctx, c, n, drained); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// size is the number of instances a new pool gets.
func (d *Driver) size() (instances, parallel int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opts.Instances, min(d.parallel, d.opts.Instances)
}

func (d *Driver) scaleColor(ctx context.Context, c route.Color, n int, drained func(context.Context, []string)) error {
	d.opMu[c].Lock()
	defer d.opMu[c].Unlock()
	d.mu.Lock()
	p := d.pools[c]
	closed := d.closed
	var have int
	if p != nil {
		have = len(p.slots)
	}
	d.mu.Unlock()
	switch {
	case closed || p == nil || have == n:
		return nil
	case have < n:
		return d.grow(ctx, p, n)
	default:
		d.shrink(ctx, p, n, drained)
		return nil
	}
}

// grow adds slots have+1..n to p; see Scale.
func (d *Driver) grow(ctx context.Context, p *pool, n int) error {
	d.mu.Lock()
	have, failed := len(p.slots), p.failed != nil
	if !failed {
		p.slots = append(p.slots, make([]*instance, n-have)...)
	}
	d.mu.Unlock()
	if failed {
		return nil
	}
	ctx, giveUp := context.WithCancelCause(ctx)
	defer giveUp(nil)
	stop := context.AfterFunc(p.ctx, func() { giveUp(errors.New("pool stopped")) })
	defer stop()

	_, parallel := d.size()
	results := make([]slotStart, n-have)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for slot := have + 1; slot <= n; slot++ {
		results[slot-have-1] = slotStart{id: instanceID(d.name, p.color, slot), state: slotNotStarted}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		if ctx.Err() != nil {
			<-sem
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r := d.startSlot(ctx, p, slot)
			results[slot-have-1] = r
			if r.failed() {
				giveUp(fmt.Errorf("instance %s failed", r.id))
			}
		})
	}
	wg.Wait()

	if err := startFailure(results, context.Cause(ctx)); err != nil {
		d.mu.Lock()
		added := slices.Clone(p.slots[have:])
		p.slots = p.slots[:have]
		d.mu.Unlock()
		d.terminateAll(context.Background(), added)
		d.persist()
		return fmt.Errorf("service %s: scale %s %s from %d to %d instances: %w", d.name, p.color, p.version, have, n, err)
	}
	d.mu.Lock()
	for _, in := range p.slots[have:] {
		in.healthy = !in.exited()
	}
	d.mu.Unlock()
	d.log.Info("pool scaled up", "color", p.color.String(), "version", p.version, "from", have, "to", n)
	d.report(p)
	for slot := have + 1; slot <= n; slot++ {
		p.wg.Go(func() { d.superviseSlot(p, slot) })
	}
	return nil
}

// shrink removes slots n+1.. from p; see Scale.
func (d *Driver) shrink(ctx context.Context, p *pool, n int, drained func(context.Context, []string)) {
	d.mu.Lock()
	var leaving []*instance
	for _, in := range p.slots[n:] {
		if in != nil {
			in.healthy = false
			leaving = append(leaving, in)
		}
	}
	have := len(p.slots)
	p.slots = p.slots[:n:n]
	p.leaving = append(p.leaving, leaving...)
	d.mu.Unlock()
	d.report(p) // out of rotation; the router drains them
	ids := make([]string, len(leaving))
	for i, in := range leaving {
		ids[i] = in.id
	}
	if drained != nil && len(ids) > 0 {
		drained(ctx, ids)
	}
	d.terminateAll(ctx, leaving)
	d.mu.Lock()
	p.leaving = slices.DeleteFunc(p.leaving, func(in *instance) bool { return slices.Contains(leaving, in) })
	d.mu.Unlock()
	d.persist()
	d.log.Info("pool scaled down", "color", p.color.String(), "version", p.version, "from", have, "to", n,
		"stopped", len(leaving))
}

// slotAt returns the instance in slot of p and whether the slot still
// belongs to the pool (Scale may have removed it). d.mu must be held.
func (p *pool) slotAt(slot int) (*instance, bool) {
	if slot < 1 || slot > len(p.slots) {
		return nil, false
	}
	return p.slots[slot-1], true
}

// clearSlot empties in's slot if in still holds it. d.mu must be held.
func (p *pool) clearSlot(in *instance) {
	if cur, ok := p.slotAt(in.slot); ok && cur == in {
		p.slots[in.slot-1] = nil
	}
}

// gateNow is the health gate new and adopted instances pass.
func (d *Driver) gateNow() *runtime.HealthGate { return d.gate.Load() }

// SetGate makes new instances (started, replaced, scaled up) pass o from
// now on, and unhealthy the number of failed probes that bounds the adopt
// gate (a configuration reload of health). A gate already waiting keeps
// the settings it started with.
func (d *Driver) SetGate(o runtime.GateOptions, unhealthy int) {
	if o.Timeout <= 0 {
		o.Timeout = runtime.DefaultProbeTimeout
	}
	old := d.gate.Swap(runtime.NewGate(o))
	d.mu.Lock()
	d.opts.Gate = o
	if unhealthy > 0 {
		d.opts.UnhealthyThreshold = unhealthy
	}
	d.mu.Unlock()
	old.CloseIdle()
}

// SetParallel makes n the number of instances a new pool, or a scale-up,
// starts at once from now on (a reload of start.parallel); it is bounded
// by the pool's size. A start under way keeps its own.
func (d *Driver) SetParallel(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.parallel = max(n, 1)
}
