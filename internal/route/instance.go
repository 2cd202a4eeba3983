package route

import (
	"sync/atomic"
	"time"
)

// Instance is one upstream of a pool together with its live state. The
// router creates one per instance ID and keeps it for the instance's life,
// so every table that lists the instance shares the same counters. ID, Addr
// and Value never change after NewInstance; the live state is atomic and
// safe for concurrent use.
type Instance struct {
	// ID identifies the instance ("<service>-<color>-<n>").
	ID string
	// Addr is the host:port requests are forwarded to.
	Addr string
	// Value is an opaque payload of the owner (the router keeps its
	// forwarding state here), read-only after NewInstance.
	Value any

	inFlight     atomic.Int64
	unhealthy    atomic.Bool
	ejectedUntil atomic.Int64 // Unix nanoseconds; 0 when not ejected
}

// NewInstance returns a healthy, idle instance.
func NewInstance(id, addr string, value any) *Instance {
	return &Instance{ID: id, Addr: addr, Value: value}
}

// Healthy reports the active health checker's latest verdict.
func (in *Instance) Healthy() bool { return !in.unhealthy.Load() }

// SetHealthy records the active health checker's verdict. A healthy verdict
// also ends a passive ejection: the instance has proven it answers again.
func (in *Instance) SetHealthy(healthy bool) {
	in.unhealthy.Store(!healthy)
	if healthy {
		in.ejectedUntil.Store(0)
	}
}

// Eject takes the instance out of selection until the given time, after a
// connection failure (passive health checking).
func (in *Instance) Eject(until time.Time) { in.ejectedUntil.Store(until.UnixNano()) }

// Ejected reports whether the instance is passively ejected at now.
func (in *Instance) Ejected(now time.Time) bool {
	u := in.ejectedUntil.Load()
	return u != 0 && now.UnixNano() < u
}

// Acquire counts a request the instance starts serving.
func (in *Instance) Acquire() { in.inFlight.Add(1) }

// Release counts a request the instance finished serving.
func (in *Instance) Release() { in.inFlight.Add(-1) }

// InFlight returns the number of requests the instance is serving.
func (in *Instance) InFlight() int64 { return in.inFlight.Load() }

func (in *Instance) available(now int64, strict bool) bool {
	if in.unhealthy.Load() {
		return false
	}
	if !strict {
		return true
	}
	u := in.ejectedUntil.Load()
	return u == 0 || now >= u
}
