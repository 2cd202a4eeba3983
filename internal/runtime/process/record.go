package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// recordSchema is the version of the instance record file's layout.
const recordSchema = 1

// records is the file <StateDir>/instances/<service>.json: every instance
// the driver runs, so that a restarted daemon can adopt them.
type records struct {
	Schema  int          `json:"schema"`
	Service string       `json:"service"`
	Pools   []poolRecord `json:"pools"`
}

type poolRecord struct {
	Color   route.Color `json:"color"`
	Version string      `json:"version"`
	// Env is the release's own environment, for the instances that
	// replace these (the file is the daemon's, mode 0600).
	Env       map[string]string `json:"env,omitempty"`
	Slots     int               `json:"slots"`
	Failed    string            `json:"failed,omitempty"`
	Instances []instanceRecord  `json:"instances"`
}

type instanceRecord struct {
	ID      string      `json:"id"`
	Slot    int         `json:"slot"`
	PID     int         `json:"pid"`
	Color   route.Color `json:"color"`
	Version string      `json:"version"`
	Port    int         `json:"port"`
	// StartTicks is the process start time from /proc/<pid>/stat; with the
	// pid it tells the instance from a later process that reused its pid.
	StartTicks uint64    `json:"start_ticks"`
	StartedAt  time.Time `json:"started_at"`
}

func (d *Driver) recordPath() string {
	return filepath.Join(d.stateDir, "instances", d.name+".json")
}

// persist writes the record file from the current pools, and for a colour
// whose recorded pool Adopt is still gating, from that record: the pools
// are adopted concurrently, and a write by the first one decided must not
// drop the others' instances, which a crash would then leave running
// unrecorded. A failure is logged and returned: Start fails on it, since
// a pool the next daemon could not find is not a pool it may serve; other
// callers go on, as the instances' marks still let Adopt find them.
//
// Concurrent calls share writes: a call returns the result of the first
// write that began after it was made (that write saw its change), so the
// instances of a pool that start together cost one or two writes, not one
// fsync each.
func (d *Driver) persist() error {
	d.mu.Lock()
	d.asked++
	mine := d.asked
	d.mu.Unlock()
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	if d.written >= mine {
		return d.writeErr
	}
	rec := records{Schema: recordSchema, Service: d.name, Pools: []poolRecord{}}
	d.mu.Lock()
	covers := d.asked // every change asked for so far is in the snapshot below
	for c, p := range d.pools {
		if p == nil {
			if pending := d.adopting[c]; pending != nil {
				rec.Pools = append(rec.Pools, *pending)
			}
			continue
		}
		pr := poolRecord{Color: p.color, Version: p.version, Env: p.env, Slots: len(p.slots), Instances: []instanceRecord{}}
		if p.failed != nil {
			pr.Failed = p.failed.Error()
		}
		// Instances a scale-down is draining stay recorded, with the slots
		// they hold, until they are stopped: a daemon that crashes
		// meanwhile adopts them rather than leaving them unmanaged.
		for _, in := range p.leaving {
			pr.Slots = max(pr.Slots, in.slot)
		}
		for _, in := range slices.Concat(p.slots, p.leaving) {
			if in == nil {
				continue
			}
			pr.Instances = append(pr.Instances, instanceRecord{
				ID: in.id, Slot: in.slot, PID: in.pid, Color: in.color, Version: in.version,
				Port: in.port, StartTicks: in.startTicks, StartedAt: in.startedAt,
			})
		}
		rec.Pools = append(rec.Pools, pr)
	}
	d.mu.Unlock()
	err := writeAtomic(d.recordPath(), rec)
	if err != nil {
		d.log.Error("record instances", "file", d.recordPath(), "err", err)
		err = fmt.Errorf("record instances in %s: %w", d.recordPath(), err)
	}
	d.written, d.writeErr = covers, err
	return err
}

// writeAtomic writes v as JSON to a temporary file, syncs it and renames it
// over path, so a crash leaves either the old or the new file.
func writeAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}

// readRecords reads the record file; a missing file is an empty record, an
// unreadable one is an error (never silently an empty start).
func (d *Driver) readRecords() (records, error) {
	b, err := os.ReadFile(d.recordPath())
	if errors.Is(err, os.ErrNotExist) {
		return records{}, nil
	}
	if err != nil {
		return records{}, err
	}
	var rec records
	if err := json.Unmarshal(b, &rec); err != nil {
		return records{}, fmt.Errorf("%s: %w", d.recordPath(), err)
	}
	if rec.Schema != recordSchema {
		return records{}, fmt.Errorf("%s: schema %d, want %d", d.recordPath(), rec.Schema, recordSchema)
	}
	return rec, nil
}

// Adopt takes over the instances a previous daemon left running and waits
// for every pool; it is AdoptExpecting with no expectation, for callers
// that hold traffic until all pools are decided. It returns the instances
// that passed the adopt gate, in record order.
func (d *Driver) Adopt(ctx context.Context) ([]runtime.Instance, error) {
	a, err := d.AdoptExpecting(ctx, Expect{Traffic: route.Colors[:]})
	return a.Instances, err
}

// Expect is what the daemon's persisted state says the service runs.
type Expect struct {
	// Serving are the pools that must run after adoption (live, previous,
	// a candidate that took traffic). One that is neither recorded nor
	// found by its marks is started again, health-gated, in the
	// background, and said so loudly.
	Serving []runtime.PoolRef
	// Traffic are the colours public traffic goes to: AdoptExpecting
	// returns once their pools are decided, and adopts the other pools
	// (a candidate still provisioning, say) in the background, so that a
	// pool that carries no traffic never delays the router.
	Traffic []route.Color
}

// Adoption is what AdoptExpecting found and did.
type Adoption struct {
	// Instances passed the adopt gate in the colours waited for.
	Instances []runtime.Instance
	// Notices say where the running instances differed from the record
	// and what was done about it: instances found only by their marks,
	// strays stopped, serving pools started again. Each is also logged
	// as an error.
	Notices []string
}

// AdoptExpecting takes over the instances a previous daemon left running:
// those in the record file, and marked processes the record misses (see
// markVar). Each live process that is the same process (pid and start
// time) is supervised again. Those that pass their health check within the
// adopt gate (see adoptGateTimeout) are reported through Listener.Pool.
// One that is alive but has not passed yet is not killed for it: it keeps
// being checked in the background until the start timeout and joins the
// pool (another Listener.Pool) once it passes, so that a health endpoint
// that blips while the daemon restarts does not cost the pool; only after
// the start timeout is it stopped and replaced. A recorded instance that
// is gone, or whose pid another process now has, is replaced in the
// background like a crashed one. Pools are adopted concurrently; the call
// returns once the pools of e.Traffic are decided. Call it once, before
// Start.
func (d *Driver) AdoptExpecting(ctx context.Context, e Expect) (Adoption, error) {
	sv, err := d.survey(e.Serving)
	if err != nil {
		return Adoption{}, fmt.Errorf("service %s: adopt instances: %w", d.name, err)
	}
	a := Adoption{Notices: sv.notices}
	// A pool rebuilt from its marks lost its release's env with the record;
	// the daemon's state still knows it.
	for i, pr := range sv.pools {
		for _, want := range e.Serving {
			if pr.Env == nil && want.Color == pr.Color && want.Version == pr.Version {
				sv.pools[i].Env = want.Env
			}
		}
	}
	d.stopStrays(sv.strays)
	d.mu.Lock()
	for _, pr := range sv.pools {
		if d.pools[pr.Color] == nil && d.adopting[pr.Color] == nil {
			d.adopting[pr.Color] = &pr
		}
	}
	d.mu.Unlock()
	a.Notices = append(a.Notices, d.restartMissing(sv.pools, e.Serving)...)
	for _, n := range a.Notices {
		d.log.Error(n)
	}

	adopted := make([][]runtime.Instance, len(sv.pools))
	errs := make([]error, len(sv.pools))
	var wg sync.WaitGroup
	for i, pr := range sv.pools {
		if !slices.Contains(e.Traffic, pr.Color) {
			d.bg.Go(func() {
				if _, err := d.adoptLocked(d.ctx, pr); err != nil && d.ctx.Err() == nil {
					d.log.Error("adopt pool", "color", pr.Color.String(), "version", pr.Version, "err", err)
				}
			})
			continue
		}
		wg.Go(func() { adopted[i], errs[i] = d.adoptLocked(ctx, pr) })
	}
	wg.Wait()
	a.Instances = slices.Concat(adopted...)
	return a, errors.Join(errs...)
}

// Survey reports the pools a restarted daemon would adopt (the record file
// completed by marked processes), without touching any of them: the
// daemon compares them with its persisted state before it trusts either.
func (d *Driver) Survey() ([]runtime.PoolRef, error) {
	sv, err := d.survey(nil)
	if err != nil {
		return nil, fmt.Errorf("service %s: survey instances: %w", d.name, err)
	}
	out := make([]runtime.PoolRef, 0, len(sv.pools))
	for _, pr := range sv.pools {
		n := 0
		for _, ir := range pr.Instances {
			if sameProcess(ir.PID, ir.StartTicks) {
				n++
			}
		}
		if n > 0 {
			out = append(out, runtime.PoolRef{Color: pr.Color, Version: pr.Version, Instances: n})
		}
	}
	return out, nil
}

// stopStrays stops, in the background, marked processes that belong to no
// pool: they were started by this driver and are supervised by nobody.
func (d *Driver) stopStrays(strays []instanceRecord) {
	for _, ir := range strays {
		in := &instance{id: ir.ID, slot: ir.Slot, color: ir.Color, version: ir.Version, port: ir.Port,
			pid: ir.PID, startTicks: ir.StartTicks, done: make(chan struct{})}
		in.stopping.Store(true)
		d.ports.Reserve(ir.Port) // terminate releases it
		d.bg.Go(func() {
			d.bg.Go(func() { d.watch(d.ctx, in) })
			d.terminate(d.ctx, in)
		})
	}
}

// restartMissing starts again, in the background and health-gated, every
// serving pool that neither the record nor the marks account for, and
// returns what it did, to be said loudly. A serving pool whose colour was
// found running another version is not touched: that is for the daemon to
// refuse (its state is older than the instances).
func (d *Driver) restartMissing(found []poolRecord, serving []runtime.PoolRef) []string {
	var notices []string
	for _, want := range serving {
		// A colour found with the same version is adopted (its gone
		// instances replaced); one found with another version is left.
		if slices.ContainsFunc(found, func(pr poolRecord) bool { return pr.Color == want.Color }) {
			continue
		}
		notices = append(notices, fmt.Sprintf("service %s: %s %s should be running, but no instance of it was recorded or found: starting it again",
			d.name, want.Color, want.Version))
		d.bg.Go(func() {
			if _, err := d.Start(d.ctx, want.Color, runtime.Release{Version: want.Version, Env: want.Env}); err != nil {
				if d.ctx.Err() != nil {
					return
				}
				d.log.Error("starting a lost pool again", "color", want.Color.String(), "version", want.Version, "err", err)
				d.notifyMu.Lock()
				defer d.notifyMu.Unlock()
				d.listener.Failed(want.Color, want.Version, err)
				return
			}
			d.log.Warn("lost pool started again", "color", want.Color.String(), "version", want.Version)
		})
	}
	return notices
}

// adoptLocked adopts one pool under its colour's operation lock.
func (d *Driver) adoptLocked(ctx context.Context, pr poolRecord) ([]runtime.Instance, error) {
	d.opMu[pr.Color].Lock()
	defer d.opMu[pr.Color].Unlock()
	return d.adoptPool(ctx, pr)
}

// adoptPool adopts one recorded pool and returns its healthy instances.
func (d *Driver) adoptPool(ctx context.Context, pr poolRecord) ([]runtime.Instance, error) {
	d.mu.Lock()
	closed, existing := d.closed, d.pools[pr.Color]
	d.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("service %s: adopt %s %s: driver closed", d.name, pr.Color, pr.Version)
	}
	if existing != nil {
		return nil, fmt.Errorf("service %s: adopt %s %s: colour already runs %s", d.name, pr.Color, pr.Version, existing.version)
	}
	p := d.newPool(pr.Color, runtime.Release{Version: pr.Version, Env: pr.Env}, max(pr.Slots, d.opts.Instances))
	for _, ir := range pr.Instances {
		if ir.Slot < 1 || ir.Slot > len(p.slots) || p.slots[ir.Slot-1] != nil {
			continue
		}
		if !sameProcess(ir.PID, ir.StartTicks) {
			d.log.Warn("recorded instance is gone, replacing it", "color", pr.Color.String(),
				"version", pr.Version, "instance", ir.ID, "pid", ir.PID)
			continue
		}
		if !d.ports.Reserve(ir.Port) {
			d.log.Warn("adopted instance's port is already reserved", "color", pr.Color.String(),
				"version", pr.Version, "instance", ir.ID, "port", ir.Port)
		}
		in := &instance{
			id: ir.ID, slot: ir.Slot, color: ir.Color, version: ir.Version, port: ir.Port,
			pid: ir.PID, startTicks: ir.StartTicks, startedAt: ir.StartedAt,
			logPath: d.logPath(ir.Color, ir.Slot), done: make(chan struct{}),
		}
		if fi, err := os.Stat(in.logPath); err == nil {
			in.logFrom = fi.Size()
		}
		d.bg.Go(func() { d.watch(d.ctx, in) })
		p.slots[ir.Slot-1] = in
	}
	deadline := time.Now().Add(d.startTimeout())
	late := d.gateAdopted(ctx, p)
	d.mu.Lock()
	d.pools[p.color] = p
	d.adopting[p.color] = nil
	adopted := d.healthyLocked(p)
	d.mu.Unlock()
	d.persist()
	d.report(p)
	d.supervise(p)
	for _, in := range late {
		p.wg.Go(func() { d.gateLate(p, in, deadline) })
	}
	d.log.Info("pool adopted", "color", p.color.String(), "version", p.version,
		"instances", len(adopted), "slots", len(p.slots), "still_checking", len(late))
	return adopted, nil
}

// adoptGateTimeout bounds the health gate that Adopt waits for: as long as
// the router's active checks take to find an instance down
// (UnhealthyThreshold probes of at most Health.Timeout each), and never
// more than the start timeout. Adopted instances were healthy when they
// were recorded, and the daemon opens no listener before Adopt returns, so
// Adopt does not wait longer for one that does not answer now; gateLate
// keeps checking it.
func (d *Driver) adoptGateTimeout() time.Duration {
	d.mu.Lock() // SetGate changes them
	defer d.mu.Unlock()
	return min(time.Duration(d.opts.UnhealthyThreshold)*d.opts.Gate.Timeout, d.startTimeout())
}

// gateAdopted health-checks the adopted instances of a pool that is not
// published yet, within the adopt gate, and marks those that pass healthy.
// One whose process is gone leaves its slot empty for the supervisor to
// replace (its process group is cleaned up in the background). One that
// is alive but has not passed stays in its slot, not serving, and is
// returned for gateLate.
func (d *Driver) gateAdopted(ctx context.Context, p *pool) (late []*instance) {
	bound := d.adoptGateTimeout()
	ctx, cancel := context.WithTimeoutCause(ctx, bound, fmt.Errorf("adopt gate %s passed", bound))
	defer cancel()
	var wg sync.WaitGroup
	for i, in := range p.slots {
		if in == nil {
			continue
		}
		wg.Go(func() {
			err := d.gateNow().WaitHealthy(ctx, in.addr(), in.done)
			d.mu.Lock()
			defer d.mu.Unlock()
			switch {
			case err == nil:
				in.healthy = true
			case in.exited():
				d.log.Warn("adopted instance exited, replacing it", "color", p.color.String(),
					"version", p.version, "instance", in.id, "pid", in.pid, "err", err)
				p.slots[i] = nil
				in.stopping.Store(true)
				d.bg.Go(func() { d.terminate(d.ctx, in) })
			default:
				d.log.Warn("adopted instance not healthy yet; the pool serves without it until it passes, within the start timeout",
					"color", p.color.String(), "version", p.version, "instance", in.id, "pid", in.pid, "err", err)
				late = append(late, in)
			}
		})
	}
	wg.Wait()
	return late
}

// gateLate keeps health-checking an adopted instance that did not pass the
// adopt gate, until deadline (the start timeout after adoption began). One
// that passes joins its pool. One that has not passed by then is stopped
// and marked evicted, so that its slot's supervisor replaces it. One that
// exits meanwhile is its supervisor's already, and one whose pool is
// stopped or closed is left to Stop or to the next daemon.
func (d *Driver) gateLate(p *pool, in *instance, deadline time.Time) {
	ctx, cancel := context.WithDeadlineCause(p.ctx, deadline, fmt.Errorf("start timeout %s passed", d.startTimeout()))
	defer cancel()
	err := d.gateNow().WaitHealthy(ctx, in.addr(), in.done)
	if p.ctx.Err() != nil || in.exited() {
		return
	}
	if err == nil {
		d.mu.Lock()
		in.healthy = true
		d.mu.Unlock()
		d.log.Info("adopted instance healthy, joined its pool", "color", p.color.String(),
			"version", p.version, "instance", in.id, "pid", in.pid)
		d.report(p)
		return
	}
	d.log.Warn("adopted instance not healthy within the start timeout, replacing it", "color", p.color.String(),
		"version", p.version, "instance", in.id, "pid", in.pid, "err", err)
	in.evicted.Store(true)
	d.terminate(p.ctx, in)
}
