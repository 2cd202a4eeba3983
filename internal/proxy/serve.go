package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
// handoffGrace, within the drain timeout) each HTTP/1 client connection is
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
	type unit struct {
		srv   *http.Server
		ln    net.Listener
		tls   bool
		conns *connTracker
	}
	units := []unit{{r.newServer(r.Handler(), true), public, r.certs != nil, &connTracker{}}}
	if preview != nil {
		units = append(units, unit{r.newServer(r.PreviewHandler(), false), preview, false, &connTracker{}})
	}
	for _, u := range units {
		u.conns.track(u.srv)
	}
	var stopping atomic.Bool
	errc := make(chan error, len(units))
	for _, u := range units {
		go func() {
			var err error
			if u.tls {
				err = u.srv.ServeTLS(u.ln, "", "")
			} else {
				err = u.srv.Serve(u.ln)
			}
			if errors.Is(err, http.ErrServerClosed) || (stopping.Load() && errors.Is(err, net.ErrClosed)) {
				err = nil
			}
			errc <- err
		}()
	}
	r.log.Info("router serving", "listen", public.Addr().String())
	var failed error
	pending := len(units)
	select {
	case <-ctx.Done():
	case failed = <-errc:
		pending--
		if failed != nil {
			failed = fmt.Errorf("serve %s: %w", r.opts.Service, failed)
		}
	}
	// Stop accepting, then let the client connections go on their own
	// (see handoff.go) before the servers shut down.
	stopping.Store(true)
	graceEnd := time.Now().Add(min(handoffGrace, r.drainTimeout()))
	srvs := make([]*http.Server, 0, len(units))
	for _, u := range units {
		_ = u.ln.Close()
		srvs = append(srvs, u.srv)
	}
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Go(func() { u.conns.drain(graceEnd) })
	}
	wg.Wait()
	r.shutdown(srvs)
	for range pending {
		if err := <-errc; err != nil && failed == nil {
			failed = fmt.Errorf("serve %s: %w", r.opts.Service, err)
		}
	}
	return failed
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
		ReadHeaderTimeout: r.opts.ReadHeaderTimeout,
		IdleTimeout:       r.opts.IdleTimeout,
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
