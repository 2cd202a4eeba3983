package static

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/cutover/cutover/internal/route"
)

// Store persists what run-time registrations changed, so that what the API
// acknowledged survives a restart. The driver owns the format of raw (JSON,
// see the package comment); the store owns durability. The daemon adapts
// its state store to it.
type Store interface {
	// LoadRegistrations returns what SaveRegistrations last saved for
	// service; found is false when nothing was ever saved.
	LoadRegistrations(service string) (raw []byte, found bool, err error)
	// SaveRegistrations replaces what is saved for service; the value is
	// durable when it returns without error.
	SaveRegistrations(service string, raw []byte) error
}

// RestoreRegistrations applies the persisted registrations on top of the
// configured versions; call it once, at start-up, before the first Start
// or Restore. Registered addresses the configuration lacks are added,
// deregistered ones it still has are removed; what the file changed
// meanwhile stands. The stored difference is then rebased on this
// configuration (and a store in the first format rewritten in the
// current one), so that it never names an address the file has since
// taken up or dropped. Without a Store it does nothing.
func (d *Driver) RestoreRegistrations() error {
	if d.store == nil {
		return nil
	}
	d.regMu.Lock()
	defer d.regMu.Unlock()
	raw, found, err := d.store.LoadRegistrations(d.name)
	if err != nil {
		return fmt.Errorf("service %s: registered static addresses: %w", d.name, err)
	}
	if !found {
		return nil
	}
	saved, current, err := decodeDelta(raw, d.configured)
	if err != nil {
		return fmt.Errorf("service %s: registered static addresses: %w", d.name, err)
	}
	d.mu.Lock()
	d.healthy = saved.Healthy
	d.mu.Unlock()
	cur := d.Versions()
	for _, v := range slices.Sorted(maps.Keys(saved.Added)) {
		for _, a := range saved.Added[v] {
			if !slices.Contains(cur[v], a) {
				if err := d.register(v, a); err != nil {
					return fmt.Errorf("restoring registered address %s of %s: %w", a, v, err)
				}
			}
		}
	}
	for _, v := range slices.Sorted(maps.Keys(saved.Removed)) {
		for _, a := range saved.Removed[v] {
			if slices.Contains(cur[v], a) {
				if err := d.deregister(v, a); err != nil {
					return fmt.Errorf("restoring deregistration of %s from %s: %w", a, v, err)
				}
			}
		}
	}
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	if rebased := d.snapshot(); !current || !rebased.equal(saved) {
		return d.saveLocked(rebased)
	}
	return nil
}

// Register adds addr to version (creating the version when unknown) at
// once, so Versions reflects it, and persists the change before it
// returns; if persisting fails the change is undone and the error
// returned. When a colour serves that version, the address joins its pool
// only once it passes its health check (probed in the background, within
// the start timeout): the router takes a new backend for healthy at once,
// and an autoscaler registers instances that are still booting. One that
// never becomes healthy is logged and stays out of the pools; one
// deregistered first is never added. Registering an address twice does
// nothing.
func (d *Driver) Register(version, addr string) error {
	return d.changeRegistration(true, version, addr)
}

// Deregister removes addr from version, and persists the change before it
// returns; if persisting fails the address is registered again and the
// error returned. A colour serving the version drops it and the listener
// sees the smaller list. An address that is not registered is an error.
func (d *Driver) Deregister(version, addr string) error {
	return d.changeRegistration(false, version, addr)
}

// changeRegistration applies one registration change and persists the
// resulting difference from the configuration before it is acknowledged;
// if persisting fails the change is undone.
func (d *Driver) changeRegistration(add bool, version, addr string) error {
	d.regMu.Lock()
	defer d.regMu.Unlock()
	had := slices.Contains(d.Versions()[version], addr)
	apply, undo := d.register, d.deregister
	if !add {
		apply, undo = d.deregister, d.register
	}
	if err := apply(version, addr); err != nil {
		return err
	}
	if err := d.save(); err != nil {
		if had != add {
			if uerr := undo(version, addr); uerr != nil {
				d.log.Error("undoing a registration change that could not be persisted", "version", version, "addr", addr, "err", uerr)
			}
		}
		return err
	}
	return nil
}

// save persists the registrations as they are now; without a Store it
// does nothing. It takes d.persistMu and d.mu, so the caller holds
// neither (nor notifyMu).
func (d *Driver) save() error {
	if d.store == nil {
		return nil
	}
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	return d.saveLocked(d.snapshot())
}

// flushHealthy persists the healthy set when a pool change added to it
// (see joinLocked). The driver path that made the change calls it after
// its listener call returned, holding none of the driver's locks but a
// colour's operation lock: the listener never waits on the store. A
// failure is logged and retried by the next save: the address is then
// only probed before it joins a pool restored after a restart.
func (d *Driver) flushHealthy() {
	if d.store == nil {
		return
	}
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	d.mu.Lock()
	dirty := d.healthyDirty
	d.mu.Unlock()
	if !dirty {
		return
	}
	if err := d.saveLocked(d.snapshot()); err != nil {
		d.log.Error("persisting healthy registered addresses", "err", err)
	}
}

// snapshot is the difference to persist, with the healthy set trimmed to
// the addresses still registered. The caller holds d.persistMu, so that
// writes reach the store in the order of their snapshots.
func (d *Driver) snapshot() delta {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl := deltaOf(d.configured, d.versions, d.healthy)
	d.healthy = dl.Healthy
	d.healthyDirty = false
	return dl
}

// saveLocked writes dl. The caller holds d.persistMu. A failed write
// leaves the healthy set marked unsaved, so the next flush tries again.
func (d *Driver) saveLocked(dl delta) error {
	raw, err := json.Marshal(dl)
	if err == nil {
		err = d.store.SaveRegistrations(d.name, raw)
	}
	if err != nil {
		d.mu.Lock()
		d.healthyDirty = true
		d.mu.Unlock()
		return fmt.Errorf("service %s: persisting static addresses: %w", d.name, err)
	}
	return nil
}

// joinLocked adds addr to pool p of colour c. A registered address (one
// the configuration lacks) is recorded as having been healthy in a pool,
// to be persisted by flushHealthy, so that a restart restores it at once.
// The caller holds d.mu.
func (d *Driver) joinLocked(p *pool, c route.Color, addr string) {
	p.add(d.name, c, p.version, addr)
	v := p.version
	if slices.Contains(d.configured[v], addr) || slices.Contains(d.healthy[v], addr) {
		return
	}
	if d.healthy == nil {
		d.healthy = map[string][]string{}
	}
	d.healthy[v] = append(d.healthy[v], addr)
	d.healthyDirty = true
}

// unprovenLocked returns the registered addresses of version that have
// never been healthy in a pool. The caller holds d.mu.
func (d *Driver) unprovenLocked(version string) []string {
	added := diffAddrs(map[string][]string{version: d.versions[version]}, d.configured)
	return diffAddrs(added, d.healthy)[version]
}
