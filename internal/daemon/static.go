package daemon

import (
	"fmt"
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
	// Restore re-establishes a persisted pool at start-up without gating.
	Restore(color route.Color, version string) ([]runtime.Instance, error)
}

// registrations persists a static service's effective address map (the
// config's addresses plus registrations minus deregistrations), so what the
// API acknowledged survives a restart like every other acknowledged change.
type registrations struct {
	mu sync.Mutex // serialises register/deregister with their persistence
}

// staticKey is the store key of a service's address map; service names
// cannot contain '/', so it never collides with a controller state.
func staticKey(service string) string { return service + "/static-addresses" }

// register applies one registration change and persists the result before
// it is acknowledged; if persisting fails the change is undone.
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
	if err := d.store.PutState(staticKey(svc.name), sp.Versions()); err != nil {
		if had != add {
			_ = undo(version, addr)
		}
		return fmt.Errorf("service %s: persisting static addresses: %w", svc.name, err)
	}
	return nil
}

// restoreRegistrations re-applies the persisted address map at start-up,
// before the pools the controller's state names are restored.
func (d *Daemon) restoreRegistrations(svc *service) error {
	sp, ok := svc.driver.(staticPools)
	if !ok {
		return nil
	}
	var saved map[string][]string
	found, err := d.store.GetState(staticKey(svc.name), &saved)
	if err != nil {
		return fmt.Errorf("registered static addresses: %w", err)
	}
	if !found {
		return nil
	}
	cur := sp.Versions()
	for v, addrs := range saved {
		for _, a := range addrs {
			if !slices.Contains(cur[v], a) {
				if err := sp.Register(v, a); err != nil {
					return fmt.Errorf("restoring registered address %s of %s: %w", a, v, err)
				}
			}
		}
	}
	for v, addrs := range cur {
		for _, a := range addrs {
			if !slices.Contains(saved[v], a) {
				if err := sp.Deregister(v, a); err != nil {
					return fmt.Errorf("restoring deregistration of %s from %s: %w", a, v, err)
				}
			}
		}
	}
	return nil
}
