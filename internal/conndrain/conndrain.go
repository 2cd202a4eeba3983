// Package conndrain lets an http.Server that shares its listening socket
// with another process (an upgrade: the new daemon serves the same
// sockets) stop without cutting a client's request.
//
// http.Server.Shutdown is not enough for that, in two ways. It closes idle
// keep-alive connections at once, so a client that sends its next request
// at that moment sees the connection die under it. And a connection the
// server accepted just before Shutdown, whose first request it had not yet
// read, is closed without an answer (net/http drops every request it reads
// once shutting down): a new connection is never retried by a client, so
// that request fails even for a GET.
//
// So a stopping server first closes its listener itself (the other process
// accepts from then on) and, for a grace period, answers every HTTP/1
// request with "Connection: close": each busy client's next request is its
// last on this process, and its following one opens a connection the
// other process accepts. A connection that stays idle for IdleCut is
// closed (HTTP/1.1 leaves a client that sends at that very moment a race
// nothing can win; IdleCut makes it rare). Shutdown runs once every
// connection has gone, or the grace period is over.
package conndrain

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Grace bounds how long a stopping server waits for its client
// connections to close before it shuts them down; IdleCut is how long a
// connection may stay idle meanwhile.
const (
	Grace   = 2 * time.Second
	IdleCut = 500 * time.Millisecond
)

// Tracker follows a server's open client connections, and closes each
// after its current response once the server is stopping. The zero value
// is ready to Track a server.
type Tracker struct {
	stopping atomic.Bool
	mu       sync.Mutex
	conns    map[net.Conn]connInfo
}

type connInfo struct {
	state http.ConnState
	since time.Time
}

// Track installs the tracker's connection hook and response wrapper on
// srv; call it before srv serves. One tracker may follow several servers
// on one listener.
func (c *Tracker) Track(srv *http.Server) {
	c.mu.Lock()
	if c.conns == nil {
		c.conns = map[net.Conn]connInfo{}
	}
	c.mu.Unlock()
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c.stopping.Load() && req.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, req)
	})
	srv.ConnState = func(conn net.Conn, s http.ConnState) {
		c.mu.Lock()
		defer c.mu.Unlock()
		switch s {
		case http.StateClosed, http.StateHijacked:
			delete(c.conns, conn)
		default:
			c.conns[conn] = connInfo{state: s, since: time.Now()}
		}
	}
}

// Drain makes every further HTTP/1 response close its connection, closes
// connections idle for IdleCut, and returns once none is open or at
// deadline. The caller has closed the listener before, and shuts the
// server down after.
func (c *Tracker) Drain(deadline time.Time) {
	c.stopping.Store(true)
	tick := time.NewTicker(IdleCut / 10)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for conn, in := range c.conns {
			if in.state == http.StateIdle && time.Since(in.since) >= IdleCut {
				conn.Close()
			}
		}
		open := len(c.conns)
		c.mu.Unlock()
		if open == 0 {
			return
		}
		<-tick.C
	}
}

// Open is the number of client connections open now.
func (c *Tracker) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}
