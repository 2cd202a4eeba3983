package runtime

import "time"

// Exits are the recent exits of a pool's instances, for crash-loop
// detection by the drivers that restart instances (process, docker). The
// zero value is ready; the caller serialises access.
type Exits struct {
	times []time.Time
}

// Add records an exit at now and returns how many exits fall within the
// window ending at now, this one included.
func (e *Exits) Add(now time.Time, window time.Duration) int {
	kept := e.times[:0]
	for _, t := range e.times {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	e.times = append(kept, now)
	return len(e.times)
}
