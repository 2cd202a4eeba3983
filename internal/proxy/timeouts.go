package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// The service's timeouts change while the router serves (SetLive) without
// touching anything a request or connection in flight reads:
//
//   - upstream_header is read per request: the h1 engine reads upHeader
//     for each exchange, and requests through http.Transport (TLS
//     instances, uploads, upgrades, health checks) take the transport
//     current when they start; a change builds a new transport, and
//     requests in flight on the old one finish there.
//   - read_header and idle are fields of an http.Server, which its
//     connections read for as long as they live, so they are never changed
//     on a running server. Each listener has its own accept loop, which
//     hands every connection to the listener's current server; a change
//     starts a new server with the new values and makes it current. The
//     connections already open stay on their server, with the values they
//     were accepted with, until they close; the old server is shut down
//     with the others when the listener retires.

// liveTransport sends each request through the router's current transport.
type liveTransport struct{ r *Router }

func (t liveTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.r.transport.Load().RoundTrip(guarded(req))
}

// applyTimeouts makes the router follow next's timeouts where they differ
// from prev's. SetLive calls it with the router's mu held.
func (r *Router) applyTimeouts(prev, next Live) {
	if prev.UpstreamHeaderTimeout != next.UpstreamHeaderTimeout {
		r.upHeader.Store(int64(next.UpstreamHeaderTimeout))
		old := r.transport.Load()
		t := old.Clone()
		t.ResponseHeaderTimeout = next.UpstreamHeaderTimeout
		r.transport.Store(t)
		// Connections the old transport gets back from requests still
		// in flight expire with its idle timeout.
		old.CloseIdleConnections()
	}
	if prev.ReadHeaderTimeout != next.ReadHeaderTimeout || prev.IdleTimeout != next.IdleTimeout {
		r.umu.Lock()
		for _, u := range r.units {
			u.addServer(r)
		}
		r.umu.Unlock()
	}
}

// register starts u (its accept loop and first server) within Serve's
// group wg and counts it among the listeners a timeout change reaches.
func (r *Router) register(u *unit, wg *sync.WaitGroup, errc chan<- error) {
	u.wg = wg
	r.umu.Lock()
	u.addServer(r)
	r.units = append(r.units, u)
	r.umu.Unlock()
	wg.Go(func() {
		if err := u.accept(); err != nil {
			select {
			case errc <- fmt.Errorf("serve %s: %w", r.opts.Service, err):
			default:
			}
		}
	})
}

// unregister takes u out of the listeners a timeout change reaches and
// returns every server it started.
func (r *Router) unregister(u *unit) []*http.Server {
	r.umu.Lock()
	defer r.umu.Unlock()
	for i, v := range r.units {
		if v == u {
			r.units = append(r.units[:i:i], r.units[i+1:]...)
			break
		}
	}
	return u.srvs
}

// addServer starts a server built with the router's current timeouts and
// makes it take u's next connections. The caller holds the router's umu.
func (u *unit) addServer(r *Router) {
	srv := r.newServer(u.handler, u.public)
	u.conns.Track(srv)
	gl := &genListener{addr: u.ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	u.srvs = append(u.srvs, srv)
	u.wg.Go(func() {
		var err error
		if u.tls {
			err = srv.ServeTLS(gl, "", "")
		} else {
			err = srv.Serve(gl)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			r.log.Error("client connection server stopped", "listen", gl.addr.String(), "err", err)
		}
	})
	if old := u.cur.Swap(gl); old != nil {
		_ = old.Close()
	}
}

// accept takes u's connections and hands each to its current server, until
// the listener closes (nil when on purpose) or fails. Temporary errors
// (out of file descriptors) are retried after a pause, as http.Server does.
func (u *unit) accept() error {
	var pause time.Duration
	for {
		c, err := u.ln.Accept()
		if err != nil {
			if u.stopping.Load() && errors.Is(err, net.ErrClosed) {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		for {
			g := u.cur.Load()
			if g.hand(c) {
				break
			}
			if u.cur.Load() == g { // every server is shut down
				_ = c.Close()
				break
			}
		}
	}
}

// genListener is the listener one of a unit's servers serves: it yields
// the connections the unit's accept loop hands it, until closed.
type genListener struct {
	addr  net.Addr
	conns chan net.Conn // unbuffered: a connection is handed or not, never left behind
	done  chan struct{}
	once  sync.Once
}

func (l *genListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// hand gives c to the server, or reports false once the listener closed.
func (l *genListener) hand(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *genListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *genListener) Addr() net.Addr { return l.addr }
