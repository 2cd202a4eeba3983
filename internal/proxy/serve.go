package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"github.com/cutover/cutover/internal/conndrain"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Serve serves the public handler on public and, when preview is not nil,
// the preview handler on preview, until ctx is done or a listener fails.
// Public speaks HTTP/1.1 with keep-alive, HTTP/2 over TLS when the service
// has a certificate, and cleartext HTTP/2 (prior knowledge) when H2C is
// set; preview speaks plain HTTP/1.1. Slow clients are bounded by the
// service's header-read and idle timeouts.
//
// On shutdown the listeners close at once; for a grace period (at most
// conndrain.Grace, within the drain timeout) each HTTP/1 client connection is
// closed after its next response, so that a process sharing the sockets
// (an upgrade) takes the client's next request; then in-flight requests
// get the drain timeout to finish, long-lived streams and
// upgraded connections are cut, and whatever remains is closed. Serve returns nil after a clean
// shutdown, or the error of the listener that failed. It does not stop the
// health watchers; Close does.
func (r *Router) Serve(ctx context.Context, public, preview net.Listener) error {
	if public == nil {
		return fmt.Errorf("serve %s: no public listener", r.opts.Service)
	}
	if !r.serving.CompareAndSwap(false, true) {
		return fmt.Errorf("serve %s: already serving", r.opts.Service)
	}
	defer r.serving.Store(false)
	quit := make(chan struct{})
	r.quit.Store(&quit)
	errc := make(chan error, 1) // the first listener that failed
	var running, retiring sync.WaitGroup
	start := func(u *unit) { r.register(u, &running, errc) }
	units := []*unit{r.newUnit(public, true)}
	if preview != nil {
		units = append(units, r.newUnit(preview, false))
	}
	for _, u := range units {
		start(u)
	}
	r.log.Info("router serving", "listen", public.Addr().String())
	var failed error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case failed = <-errc:
			break loop
		case req := <-r.rebinds:
			units = r.rebind(units, req, start, &retiring)
		}
	}
	close(quit)
	// Stop accepting, then let the client connections go on their own
	// (see package conndrain) before the servers shut down.
	graceEnd := time.Now().Add(min(conndrain.Grace, r.drainTimeout()))
	var srvs []*http.Server
	for _, u := range units {
		u.stopping.Store(true)
		_ = u.ln.Close()
		srvs = append(srvs, r.unregister(u)...)
	}
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Go(func() { u.conns.Drain(graceEnd) })
	}
	wg.Wait()
	r.shutdown(srvs)
	retiring.Wait()
	running.Wait()
	return failed
}

// unit is one listener and the HTTP servers on it: the current one takes
// new connections, older ones (built with other timeouts) keep theirs
// (timeouts.go).
type unit struct {
	ln       net.Listener
	public   bool
	tls      bool
	handler  http.Handler
	conns    *conndrain.Tracker
	stopping atomic.Bool // its listener is being closed on purpose
	wg       *sync.WaitGroup
	cur      atomic.Pointer[genListener]
	srvs     []*http.Server // every server started on it, the current one last; guarded by Router.umu
}

func (r *Router) newUnit(ln net.Listener, public bool) *unit {
	h := r.PreviewHandler()
	if public {
		h = r.Handler()
	}
	return &unit{handler: h, ln: ln, public: public, tls: public && r.certs != nil, conns: &conndrain.Tracker{}}
}

// shutdown stops the servers gracefully within the drain timeout, then
// cuts streams and upgraded connections and closes what remains.
func (r *Router) shutdown(srvs []*http.Server) {
	deadline := time.Now().Add(r.drainTimeout())
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Go(func() { _ = s.Shutdown(sctx) })
	}
	wg.Wait()
	// Shutdown does not wait for hijacked (upgraded) connections; they
	// count as in flight on their instance until they end.
	r.mu.Lock()
	all := make([]*backend, 0, len(r.members))
	for _, be := range r.members {
		all = append(all, be)
	}
	r.mu.Unlock()
	if !waitIdle(sctx, all, deadline) {
		n := 0
		for _, be := range all {
			n += be.cutStreams()
		}
		r.log.Warn("shutdown deadline passed; streams cut", "streams", n)
	}
	for _, s := range srvs {
		_ = s.Close()
	}
	r.log.Info("router stopped")
}

func (r *Router) newServer(h http.Handler, public bool) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: r.settings().opts.ReadHeaderTimeout,
		IdleTimeout:       r.settings().opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	if public && r.certs != nil {
		srv.Protocols.SetHTTP2(true)
		// GetCertificate, not Certificates: a certificate reloaded
		// (SetLive, WatchCertificate) applies to the next handshake.
		srv.TLSConfig = &tls.Config{GetCertificate: r.certs.get, MinVersion: tls.VersionTLS12}
	}
	if public && r.opts.H2C {
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}
