package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/health"
)

// Live is the part of a router's Options that SetLive changes while it
// serves (a configuration reload): the fields of the same names in
// Options, with the same defaults.
type Live struct {
	TrustedProxies []string
	FallbackPage   string
	Health         health.Config
	DrainTimeout   time.Duration
	// TLSCert and TLSKey are the public listener's certificate files; the
	// router re-reads them on SetLive and whenever they change on disk
	// (see WatchCertificate). They cannot be turned on or off live: a
	// router built without TLS serves plain HTTP until it is rebuilt.
	TLSCert, TLSKey string
	// ReadHeaderTimeout and IdleTimeout apply to client connections
	// accepted after SetLive (a connection keeps the values it was
	// accepted with); UpstreamHeaderTimeout to the next request to an
	// instance. See timeouts.go.
	ReadHeaderTimeout, IdleTimeout, UpstreamHeaderTimeout time.Duration
}

// liveState is what the request path and the control plane read of the
// settings SetLive changes; published whole through Router.dyn.
type liveState struct {
	opts     Live
	trusted  []netip.Prefix
	fallback []byte
}

// loadLive parses and reads what l names (trusted prefixes, the fallback
// page), reporting every problem at once.
func loadLive(l Live) (*liveState, error) {
	if l.DrainTimeout <= 0 {
		l.DrainTimeout = DefaultDrainTimeout
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.UpstreamHeaderTimeout <= 0 {
		l.UpstreamHeaderTimeout = DefaultUpstreamHeaderTimeout
	}
	s := &liveState{opts: l, fallback: []byte(builtinFallback)}
	var errs []error
	for _, p := range l.TrustedProxies {
		pre, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("trusted proxy %q: %w", p, err))
				continue
			}
			pre = netip.PrefixFrom(a, a.BitLen())
		}
		s.trusted = append(s.trusted, pre.Masked())
	}
	if l.FallbackPage != "" {
		b, err := os.ReadFile(l.FallbackPage)
		if err != nil {
			errs = append(errs, fmt.Errorf("fallback page: %w", err))
		}
		s.fallback = b
	}
	return s, errors.Join(errs...)
}

// SetLive makes the router follow l from now on: trusted proxies and the
// fallback page for the next request, the drain timeout for the next
// drain, the upstream header timeout for the next request to an instance,
// the client read-header and idle timeouts for the next client connection
// (timeouts.go), the health settings by restarting every member's check (each
// keeps its current health), and a re-read certificate for the next TLS
// handshake. Files are read first; when one cannot be read or a value is
// invalid nothing changes and the error says why. Turning TLS on or off
// is refused: the listener was built for one or the other.
func (r *Router) SetLive(l Live) error {
	if (l.TLSCert != "") != (r.certs != nil) {
		return fmt.Errorf("service %s: tls cannot be turned on or off while the router serves", r.opts.Service)
	}
	next, err := loadLive(l)
	if err != nil {
		return fmt.Errorf("service %s: %w", r.opts.Service, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.certs != nil {
		if err := r.certs.load(l.TLSCert, l.TLSKey); err != nil {
			return fmt.Errorf("service %s: %w", r.opts.Service, err)
		}
	}
	prev := r.dyn.Swap(next)
	r.applyTimeouts(prev.opts, next.opts)
	if !reflect.DeepEqual(prev.opts.Health, l.Health) && !r.closed {
		for _, be := range r.members {
			be.stopWatch()
			r.watch(be)
		}
	}
	r.log.Info("settings reloaded")
	return nil
}

// settings returns the live settings.
func (r *Router) settings() *liveState { return r.dyn.Load() }

// atomicCert is the certificate the next handshake gets.
type atomicCert = atomic.Pointer[tls.Certificate]

// certStore holds the public listener's certificate for
// tls.Config.GetCertificate, so that a new one applies to the next
// handshake without touching the listener.
type certStore struct {
	cur  atomicCert
	file [2]fileStamp // of the certificate and key when last read
}

func newCertStore(cert, key string) (*certStore, error) {
	s := &certStore{}
	if err := s.load(cert, key); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads cert and key; on success the next handshake uses them. The
// router's mu must be held (or the store not yet shared).
func (s *certStore) load(cert, key string) error {
	stamps := [2]fileStamp{stampOf(cert), stampOf(key)}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return fmt.Errorf("tls certificate %s: %w", cert, err)
	}
	s.cur.Store(&pair)
	s.file = stamps
	return nil
}

func (s *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cur.Load(), nil }

// fileStamp is what tells a file changed without reading it.
type fileStamp struct {
	size int64
	mod  time.Time
	ok   bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), mod: fi.ModTime(), ok: true}
}

// WatchCertificate re-reads the public listener's certificate whenever
// its files' size or modification time change, checked every interval,
// until ctx is done. A pair that does not load (a key written after its
// certificate, say) is logged and tried again at the next check; the
// certificate served until then is the last good one. It does nothing for
// a router without TLS.
func (r *Router) WatchCertificate(ctx context.Context, interval time.Duration) {
	if r.certs == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed [2]fileStamp
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l := r.settings().opts
		r.mu.Lock() // one loader at a time: SetLive holds it too
		now := [2]fileStamp{stampOf(l.TLSCert), stampOf(l.TLSKey)}
		if now != r.certs.file && now != failed {
			if err := r.certs.load(l.TLSCert, l.TLSKey); err != nil {
				failed = now
				r.log.Error("certificate changed on disk but does not load; serving the previous one", "err", err)
			} else {
				failed = [2]fileStamp{}
				r.log.Info("certificate reloaded from disk", "cert", l.TLSCert)
			}
		}
		r.mu.Unlock()
	}
}
