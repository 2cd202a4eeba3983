package daemon

import (
	"context"
	"sync"
)

// writeGate keeps API writes (every request that can change state) off
// the controllers while an upgrade moves them to another process. An
// upgrade waits for the writes under way, then holds new ones until it
// ends: when the new daemon took over they are sent on to it (see
// api.WriteGate), when it failed this daemon runs them. Without the gate a
// write during the second or so of a hand-over failed, or worse, went to a
// daemon that was about to exit (a reload applied to the old process).
type writeGate struct {
	mu     sync.Mutex
	active int           // writes running on this daemon
	idle   chan struct{} // closed when active drops to 0 during an upgrade
	held   chan struct{} // non-nil while an upgrade is under way; closed at its end
	moved  bool          // an upgrade handed this daemon's state to another
}

// EnterWrite waits while an upgrade is under way; see api.WriteGate.
func (g *writeGate) EnterWrite(ctx context.Context) (leave func(), moved bool, err error) {
	g.mu.Lock()
	for g.held != nil {
		held := g.held
		g.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		g.mu.Lock()
	}
	defer g.mu.Unlock()
	if g.moved {
		return nil, true, nil
	}
	g.active++
	var once sync.Once
	return func() { once.Do(g.leave) }, false, nil
}

func (g *writeGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	if g.active == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// hold starts holding new writes and waits for those under way to end.
// On error (ctx done first) writes are held still; release always follows.
func (g *writeGate) hold(ctx context.Context) error {
	g.mu.Lock()
	g.held = make(chan struct{})
	if g.active == 0 {
		g.mu.Unlock()
		return nil
	}
	idle := make(chan struct{})
	g.idle = idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release lets the held writes go: on to the new daemon when moved, else
// here.
func (g *writeGate) release(moved bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.moved = g.moved || moved
	g.idle = nil
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

// EnterWrite implements api.WriteGate.
func (d *Daemon) EnterWrite(ctx context.Context) (leave func(), moved bool, err error) {
	return d.writes.EnterWrite(ctx)
}
