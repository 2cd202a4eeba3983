package proxy

import "github.com/cutover/cutover/internal/route"

// Sealed reports whether no request can reach color any more: Drain took
// it out of rotation for public and preview traffic, and nothing of it is
// in flight on either. The router is the only way in to its pools, so the
// controller stops a sealed colour without waiting for a quiet period.
func (r *Router) Sealed(color route.Color) bool {
	c := color & 1
	r.mu.Lock()
	disabled := r.pools[c].disabled
	r.mu.Unlock()
	return disabled && r.rec[c].Snapshot().InFlight == 0 && r.prev[c].Snapshot().InFlight == 0
}
