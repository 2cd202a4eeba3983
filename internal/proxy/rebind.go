package proxy

import (
	"context"
	"fmt"
	"github.com/cutover/cutover/internal/conndrain"
	"net"
	"sync"
	"time"
)

// rebindReq asks Serve to serve ln instead of its public (or preview)
// listener; a nil ln for preview stops serving preview.
type rebindReq struct {
	ln     net.Listener
	public bool
	done   chan struct{}
}

// Rebind makes a serving router take ln as its public listener (public
// true) or its preview listener, for a listen address changed by a
// configuration reload. The new listener serves before the old one is
// touched; the old one then stops accepting and its connections finish
// as on shutdown: each HTTP/1 connection is closed after its next
// response (within conndrain.Grace), in-flight requests get the drain
// timeout, and the old server is closed after it. Rebind returns once ln
// serves, not waiting for the old listener's requests. A nil ln for
// preview stops serving preview; a preview listener where there was none
// starts it. It fails when the router is not serving or ctx ends first;
// the caller then still owns ln.
func (r *Router) Rebind(ctx context.Context, public bool, ln net.Listener) error {
	if public && ln == nil {
		return fmt.Errorf("rebind %s: no public listener", r.opts.Service)
	}
	quit := r.quit.Load()
	if !r.serving.Load() || quit == nil {
		return fmt.Errorf("rebind %s: the router is not serving", r.opts.Service)
	}
	req := rebindReq{ln: ln, public: public, done: make(chan struct{})}
	select {
	case r.rebinds <- req:
	case <-*quit:
		return fmt.Errorf("rebind %s: the router is stopping", r.opts.Service)
	case <-ctx.Done():
		return fmt.Errorf("rebind %s: %w", r.opts.Service, ctx.Err())
	}
	<-req.done
	return nil
}

// rebind is Serve's side of Rebind: it starts the new unit, then retires
// the one it replaces in the background (owned by retiring).
func (r *Router) rebind(units []*unit, req rebindReq, start func(*unit), retiring *sync.WaitGroup) []*unit {
	defer close(req.done)
	var next []*unit
	var old *unit
	for _, u := range units {
		if u.public == req.public {
			old = u
			continue
		}
		next = append(next, u)
	}
	if req.ln != nil {
		u := r.newUnit(req.ln, req.public)
		start(u)
		next = append(next, u)
		r.log.Info("listener rebound", "public", req.public, "listen", req.ln.Addr().String())
	}
	if old != nil {
		r.unregister(old) // no new server for it from a timeout change
		retiring.Go(func() { r.retireUnit(old) })
	}
	return next
}

// retireUnit closes a replaced listener and lets its connections finish.
func (r *Router) retireUnit(u *unit) {
	u.stopping.Store(true)
	_ = u.ln.Close()
	drain := r.drainTimeout()
	u.conns.Drain(time.Now().Add(min(conndrain.Grace, drain)))
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	srvs := r.unregister(u)
	var wg sync.WaitGroup
	for _, srv := range srvs {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				r.log.Warn("old listener's requests cut at the drain timeout", "listen", u.ln.Addr().String(), "err", err)
			}
			_ = srv.Close()
		})
	}
	wg.Wait()
	r.log.Info("old listener closed", "listen", u.ln.Addr().String())
}
