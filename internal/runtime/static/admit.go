package static

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// probeKey names one address of one version.
type probeKey struct{ version, addr string }

// probe is a background health gate of a registered address that a running
// pool of its version lacks. It is owned by the driver: cancelled when the
// address is deregistered, when no colour runs the version any more, and
// by Close.
type probe struct {
	cancel  context.CancelFunc
	timeout time.Duration // 0: as long as a colour runs the version
}

// admitLocked starts a probe that adds addr to every pool running version
// once it passes its health check. With a timeout the probe gives up (and
// logs) after it; without, it lasts as long as a colour runs the version.
// A running probe is kept unless it has a timeout and the new one has none.
// The caller holds d.mu.
func (d *Driver) admitLocked(version, addr string, timeout time.Duration) {
	k := probeKey{version, addr}
	if d.closed {
		return
	}
	if cur := d.probes[k]; cur != nil {
		if cur.timeout == 0 || timeout > 0 {
			return
		}
		cur.cancel()
	}
	ctx, cancel := context.WithCancel(d.ctx)
	if timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(d.ctx, timeout, fmt.Errorf("start timeout %s passed", timeout))
	}
	pr := &probe{cancel: cancel, timeout: timeout}
	d.probes[k] = pr
	d.bg.Go(func() { d.runProbe(ctx, k, pr) })
}

// admitMissingLocked starts a probe for every registered address of
// version that colour c's pool lacks: those that failed its start gate and
// those registered while it was gating. The caller holds d.mu.
func (d *Driver) admitMissingLocked(c route.Color, version string) {
	p := d.pools[c]
	for _, a := range d.versions[version] {
		if !p.has(a) {
			d.admitLocked(version, a, 0)
		}
	}
}

func (d *Driver) runProbe(ctx context.Context, k probeKey, pr *probe) {
	defer pr.cancel()
	err := d.gate.WaitHealthyEvery(ctx, k.addr, nil, d.probeEvery)
	d.mu.Lock()
	if d.probes[k] != pr { // cancelled: deregistered, no pool left, or closed
		d.mu.Unlock()
		return
	}
	delete(d.probes, k)
	if err != nil {
		d.mu.Unlock()
		d.log.Warn("address never became healthy; not added to its pools", "version", k.version, "addr", k.addr, "err", err)
		return
	}
	var changed []route.Color
	if slices.Contains(d.versions[k.version], k.addr) {
		for _, c := range d.colorsRunning(k.version) {
			if p := d.pools[c]; !p.has(k.addr) {
				d.joinLocked(p, c, k.addr)
				changed = append(changed, c)
			}
		}
	}
	d.mu.Unlock()
	for _, c := range changed {
		d.log.Info("address healthy, added to pool", "color", c.String(), "version", k.version, "addr", k.addr)
		d.report(c)
	}
	d.flushHealthy()
}

// cancelProbeLocked stops the probe of addr in version, if any. The caller
// holds d.mu.
func (d *Driver) cancelProbeLocked(version, addr string) {
	k := probeKey{version, addr}
	if pr := d.probes[k]; pr != nil {
		pr.cancel()
		delete(d.probes, k)
	}
}

// pruneProbesLocked stops the probes of versions no colour runs any more:
// there is no pool left to add their addresses to, and a later Start gates
// them itself. The caller holds d.mu.
func (d *Driver) pruneProbesLocked() {
	for k, pr := range d.probes {
		if len(d.colorsRunning(k.version)) == 0 {
			pr.cancel()
			delete(d.probes, k)
		}
	}
}

func (p *pool) has(addr string) bool {
	return slices.ContainsFunc(p.instances, func(in runtime.Instance) bool { return in.Addr == addr })
}
