package daemon

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// staticPools is what the static runtime offers beyond the driver contract:
// run-time registration and the effective address map.
type staticPools interface {
	runtime.Registrar
	Versions() map[string][]string
	// Restore re-establishes a persisted pool at start-up without gating
	// but for the unproven addresses, which it probes first.
	Restore(color route.Color, version string, unproven []string) ([]runtime.Instance, error)
}

// registrations persists what a static service's run-time registrations
// changed, so what the API acknowledged survives a restart like every
// other acknowledged change.
type registrations struct {
	mu sync.Mutex // serialises register/deregister with their persistence

	// persistMu serialises the writes, which the listener also makes, from
	// inside driver calls that register and deregister make: it is taken
	// after mu and after the driver's own locks, never before them.
	persistMu sync.Mutex
	// healthy holds the registered addresses (not configured) that have
	// been in a pool, so passed a health check; guarded by persistMu.
	healthy map[string][]string
}

// staticKey is the store key of a service's registrations; service names
// cannot contain '/', so it never collides with a controller state.
func staticKey(service string) string { return service + "/static-addresses" }

// staticDeltaSchema marks the stored value as a staticDelta. The first
// format stored the whole effective address map (version -> addresses),
// whose values are all lists, so a number under "schema" tells them apart.
const staticDeltaSchema = 2

// staticDelta is what registrations changed relative to the configured
// addresses: the addresses registered that the configuration lacks, and
// the configured ones deregistered. Only the difference is stored, so that
// an edit of runtime.static.versions followed by a restart takes effect:
// the stored map of every address would overrule the file.
//
// Healthy names the added addresses that have been in a pool: a restored
// pool takes those at once, and probes the others (registered, never
// healthy) before they join, as Register does.
type staticDelta struct {
	Schema  int                 `json:"schema"`
	Added   map[string][]string `json:"added,omitempty"`
	Removed map[string][]string `json:"removed,omitempty"`
	Healthy map[string][]string `json:"healthy,omitempty"`
}

// diffAddrs returns, per version, the addresses of a missing from b; nil
// when there is none.
func diffAddrs(a, b map[string][]string) map[string][]string {
	var out map[string][]string
	for _, v := range slices.Sorted(maps.Keys(a)) {
		for _, addr := range a[v] {
			if !slices.Contains(b[v], addr) {
				if out == nil {
					out = map[string][]string{}
				}
				out[v] = append(out[v], addr)
			}
		}
	}
	return out
}

// deltaOf is effective relative to configured.
func deltaOf(configured, effective map[string][]string) staticDelta {
	return staticDelta{Schema: staticDeltaSchema, Added: diffAddrs(effective, configured), Removed: diffAddrs(configured, effective)}
}

// decodeDelta reads a stored value; current is false for a value in the
// first format (the whole effective map), which becomes the addresses it
// has beyond the configuration, and no removal: which configured addresses
// it lacks because they were deregistered, and which because they were
// added to the file after it was saved, cannot be told apart, and keeping
// an address the router's health checks can eject is the safe side.
func decodeDelta(raw json.RawMessage, configured map[string][]string) (_ staticDelta, current bool, err error) {
	var probe struct {
		Schema *int `json:"schema"` // an error for the first format's list
	}
	if json.Unmarshal(raw, &probe) == nil && probe.Schema != nil {
		var d staticDelta
		if err := json.Unmarshal(raw, &d); err != nil {
			return staticDelta{}, false, err
		}
		if d.Schema != staticDeltaSchema {
			return staticDelta{}, false, fmt.Errorf("schema %d, want %d", d.Schema, staticDeltaSchema)
		}
		return d, true, nil
	}
	var full map[string][]string
	if err := json.Unmarshal(raw, &full); err != nil {
		return staticDelta{}, false, err
	}
	return staticDelta{Schema: staticDeltaSchema, Added: diffAddrs(full, configured)}, false, nil
}

// configuredAddrs is the service's runtime.static.versions. A reload
// cannot change the runtime, so it is the configuration the driver was
// built from.
func configuredAddrs(svc *service) map[string][]string {
	if st := svc.cfg.Load().Runtime.Static; st != nil {
		return st.Versions
	}
	return nil
}

// changeRegistration applies one registration change and persists the
// resulting difference from the configuration before it is acknowledged;
// if persisting fails the change is undone.
func (d *Daemon) changeRegistration(svc *service, sp staticPools, add bool, version, addr string) error {
	svc.reg.mu.Lock()
	defer svc.reg.mu.Unlock()
	had := slices.Contains(sp.Versions()[version], addr)
	apply, undo := sp.Register, sp.Deregister
	if !add {
		apply, undo = sp.Deregister, sp.Register
	}
	if err := apply(version, addr); err != nil {
		return classify(err)
	}
	if err := d.saveRegistrations(svc, sp); err != nil {
		if had != add {
			_ = undo(version, addr)
		}
		return fmt.Errorf("service %s: persisting static addresses: %w", svc.name, err)
	}
	return nil
}

// restoreRegistrations applies the persisted registrations on top of the
// configuration at start-up, before the pools the controller's state names
// are restored: registered addresses the file lacks are added, deregistered
// ones the file still has are removed. What the file changed meanwhile
// stands. The stored difference is then rebased on this configuration, so
// that it never names an address the file has since taken up or dropped.
func (d *Daemon) restoreRegistrations(svc *service) error {
	sp, ok := svc.driver.(staticPools)
	if !ok {
		return nil
	}
	var raw json.RawMessage
	found, err := d.store.GetState(staticKey(svc.name), &raw)
	if err != nil {
		return fmt.Errorf("registered static addresses: %w", err)
	}
	if !found {
		return nil
	}
	configured := configuredAddrs(svc)
	saved, current, err := decodeDelta(raw, configured)
	if err != nil {
		return fmt.Errorf("registered static addresses: %w", err)
	}
	cur := sp.Versions()
	for _, v := range slices.Sorted(maps.Keys(saved.Added)) {
		for _, a := range saved.Added[v] {
			if !slices.Contains(cur[v], a) {
				if err := sp.Register(v, a); err != nil {
					return fmt.Errorf("restoring registered address %s of %s: %w", a, v, err)
				}
			}
		}
	}
	for _, v := range slices.Sorted(maps.Keys(saved.Removed)) {
		for _, a := range saved.Removed[v] {
			if slices.Contains(cur[v], a) {
				if err := sp.Deregister(v, a); err != nil {
					return fmt.Errorf("restoring deregistration of %s from %s: %w", a, v, err)
				}
			}
		}
	}
	svc.reg.persistMu.Lock() // not before: Deregister may call the listener
	defer svc.reg.persistMu.Unlock()
	svc.reg.healthy = saved.Healthy
	if rebased := svc.reg.deltaLocked(configured, sp.Versions()); !current || !equalDelta(rebased, saved) {
		if err := d.store.PutState(staticKey(svc.name), rebased); err != nil {
			return fmt.Errorf("service %s: persisting static addresses: %w", svc.name, err)
		}
	}
	return nil
}

// deltaLocked is the difference to persist, with the healthy set trimmed
// to the addresses still registered. The caller holds persistMu.
func (r *registrations) deltaLocked(configured, effective map[string][]string) staticDelta {
	delta := deltaOf(configured, effective)
	r.healthy = diffAddrs(r.healthy, diffAddrs(r.healthy, delta.Added)) // those still added
	delta.Healthy = r.healthy
	return delta
}

// saveRegistrations persists the service's registrations as they are now.
func (d *Daemon) saveRegistrations(svc *service, sp staticPools) error {
	svc.reg.persistMu.Lock()
	defer svc.reg.persistMu.Unlock()
	return d.store.PutState(staticKey(svc.name), svc.reg.deltaLocked(configuredAddrs(svc), sp.Versions()))
}

// noteHealthy records the registered addresses of a static pool report as
// having passed a health check, so that a restart restores them at once.
// A failure to persist it is logged: the address is then only probed
// before it joins a pool restored after a restart.
func (d *Daemon) noteHealthy(svc *service, version string, insts []runtime.Instance) {
	sp, ok := svc.driver.(staticPools)
	if !ok || len(insts) == 0 {
		return
	}
	svc.reg.persistMu.Lock()
	defer svc.reg.persistMu.Unlock()
	configured := configuredAddrs(svc)
	var fresh []string
	for _, in := range insts {
		if !slices.Contains(configured[version], in.Addr) && !slices.Contains(svc.reg.healthy[version], in.Addr) {
			fresh = append(fresh, in.Addr)
		}
	}
	if len(fresh) == 0 {
		return
	}
	if svc.reg.healthy == nil {
		svc.reg.healthy = map[string][]string{}
	}
	svc.reg.healthy[version] = append(svc.reg.healthy[version], fresh...)
	if err := d.store.PutState(staticKey(svc.name), svc.reg.deltaLocked(configured, sp.Versions())); err != nil {
		svc.log.Error("persisting healthy registered addresses", "version", version, "err", err)
	}
}

// unproven returns the registered addresses of version that have never
// passed a health check.
func (d *Daemon) unproven(svc *service, sp staticPools, version string) []string {
	svc.reg.persistMu.Lock()
	defer svc.reg.persistMu.Unlock()
	added := svc.reg.deltaLocked(configuredAddrs(svc), sp.Versions()).Added
	return diffAddrs(added, svc.reg.healthy)[version]
}

func equalDelta(a, b staticDelta) bool {
	eq := func(x, y map[string][]string) bool { return maps.EqualFunc(x, y, slices.Equal) }
	return a.Schema == b.Schema && eq(a.Added, b.Added) && eq(a.Removed, b.Removed) && eq(a.Healthy, b.Healthy)
}
