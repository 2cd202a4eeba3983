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
	Color     route.Color      `json:"color"`
	Version   string           `json:"version"`
	Slots     int              `json:"slots"`
	Failed    string           `json:"failed,omitempty"`
	Instances []instanceRecord `json:"instances"`
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
	return filepath.Join(d.stateDir, "instances", d.svc.Name+".json")
}

// persist writes the record file from the current pools, and for a colour
// whose recorded pool Adopt is still gating, from that record: the pools
// are adopted concurrently, and a write by the first one decided must not
// drop the others' instances, which a crash would then leave running
// unrecorded. A failure is logged: the instances keep running, only their
// adoption is at risk.
func (d *Driver) persist() {
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	rec := records{Schema: recordSchema, Service: d.svc.Name, Pools: []poolRecord{}}
	d.mu.Lock()
	for c, p := range d.pools {
		if p == nil {
			if pending := d.adopting[c]; pending != nil {
				rec.Pools = append(rec.Pools, *pending)
			}
			continue
		}
		pr := poolRecord{Color: p.color, Version: p.version, Slots: len(p.slots), Instances: []instanceRecord{}}
		if p.failed != nil {
			pr.Failed = p.failed.Error()
		}
		for _, in := range p.slots {
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
	if err := writeAtomic(d.recordPath(), rec); err != nil {
		d.log.Error("record instances", "err", err)
	}
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

// Adopt takes over the instances a previous daemon recorded: each recorded
// process that is still alive and is the same process (pid and start time)
// is supervised again. Those that pass their health check within the adopt
// gate (see adoptGateTimeout) are reported through Listener.Pool before
// Adopt returns. One that is alive but has not passed yet is not killed
// for it: it keeps being checked in the background until the start
// timeout and joins the pool (another Listener.Pool) once it passes, so
// that a health endpoint that blips while the daemon restarts does not
// cost the pool; only after the start timeout is it stopped and replaced.
// A recorded instance that is gone, or whose pid another process now has,
// is replaced in the background like a crashed one. The pools are gated
// concurrently. Call it once, before Start. It returns the instances that
// passed the adopt gate, in record order.
func (d *Driver) Adopt(ctx context.Context) ([]runtime.Instance, error) {
	rec, err := d.readRecords()
	if err != nil {
		return nil, fmt.Errorf("service %s: adopt instances: %w", d.svc.Name, err)
	}
	adopted := make([][]runtime.Instance, len(rec.Pools))
	errs := make([]error, len(rec.Pools))
	d.mu.Lock()
	for _, pr := range rec.Pools {
		if d.pools[pr.Color] == nil && d.adopting[pr.Color] == nil {
			d.adopting[pr.Color] = &pr
		}
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for i, pr := range rec.Pools {
		wg.Go(func() {
			d.opMu[pr.Color].Lock()
			defer d.opMu[pr.Color].Unlock()
			adopted[i], errs[i] = d.adoptPool(ctx, pr)
		})
	}
	wg.Wait()
	return slices.Concat(adopted...), errors.Join(errs...)
}

// adoptPool adopts one recorded pool and returns its healthy instances.
func (d *Driver) adoptPool(ctx context.Context, pr poolRecord) ([]runtime.Instance, error) {
	d.mu.Lock()
	closed, existing := d.closed, d.pools[pr.Color]
	d.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("service %s: adopt %s %s: driver closed", d.svc.Name, pr.Color, pr.Version)
	}
	if existing != nil {
		return nil, fmt.Errorf("service %s: adopt %s %s: colour already runs %s", d.svc.Name, pr.Color, pr.Version, existing.version)
	}
	p := d.newPool(pr.Color, pr.Version, max(pr.Slots, d.svc.Instances, 1))
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
	timeout, n := d.svc.Health.Timeout, d.svc.Health.UnhealthyThreshold
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if n <= 0 {
		n = 3
	}
	return min(time.Duration(n)*timeout, d.startTimeout())
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
			err := d.gate.WaitHealthy(ctx, in.addr(), in.done)
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
	err := d.gate.WaitHealthy(ctx, in.addr(), in.done)
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
