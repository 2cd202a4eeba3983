// Package runtimetest holds test helpers for runtime drivers: a Listener
// that records what a driver reports and lets a test wait for it. It is
// imported only by tests and never reaches the binary.
package runtimetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// PoolEvent is one Listener.Pool call.
type PoolEvent struct {
	Color     route.Color
	Version   string
	Instances []runtime.Instance
}

// FailedEvent is one Listener.Failed call.
type FailedEvent struct {
	Color   route.Color
	Version string
	Err     error
}

// Recorder is a runtime.Listener that keeps every call. It is safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	pools   []PoolEvent
	failed  []FailedEvent
	changed chan struct{} // closed and replaced on every call
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{changed: make(chan struct{})} }

// Pool records the call.
func (r *Recorder) Pool(c route.Color, version string, ins []runtime.Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pools = append(r.pools, PoolEvent{c, version, append([]runtime.Instance(nil), ins...)})
	close(r.changed)
	r.changed = make(chan struct{})
}

// Failed records the call.
func (r *Recorder) Failed(c route.Color, version string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, FailedEvent{c, version, err})
	close(r.changed)
	r.changed = make(chan struct{})
}

// PoolEvents returns every Pool call so far.
func (r *Recorder) PoolEvents() []PoolEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]PoolEvent(nil), r.pools...)
}

// Last returns the last Pool call for colour c (ok false when none).
func (r *Recorder) Last(c route.Color) (ev PoolEvent, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.pools) - 1; i >= 0; i-- {
		if r.pools[i].Color == c {
			return r.pools[i], true
		}
	}
	return PoolEvent{}, false
}

// WaitPool waits until the last Pool call for colour c satisfies cond and
// returns it; it fails the test after timeout.
func (r *Recorder) WaitPool(t testing.TB, c route.Color, timeout time.Duration, what string, cond func(PoolEvent) bool) PoolEvent {
	t.Helper()
	var ev PoolEvent
	err := r.wait(timeout, func() bool {
		var ok bool
		ev, ok = r.Last(c)
		return ok && cond(ev)
	})
	if err != nil {
		t.Fatalf("waiting for %s pool: %s: %v (last: %+v)", c, what, err, ev)
	}
	return ev
}

// WaitFailed waits for a Failed call for colour c and returns it; it fails
// the test after timeout.
func (r *Recorder) WaitFailed(t testing.TB, c route.Color, timeout time.Duration) FailedEvent {
	t.Helper()
	var ev FailedEvent
	err := r.wait(timeout, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, f := range r.failed {
			if f.Color == c {
				ev = f
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("waiting for %s to fail: %v", c, err)
	}
	return ev
}

// FailedEvents returns every Failed call so far.
func (r *Recorder) FailedEvents() []FailedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]FailedEvent(nil), r.failed...)
}

func (r *Recorder) wait(timeout time.Duration, cond func() bool) error {
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("not within %s", timeout)
		}
	}
}
