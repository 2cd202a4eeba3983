package proxy

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Stopping a router that shares its listening sockets with another process
// (an upgrade: the new daemon serves the same sockets) must not cut a
// client's keep-alive connection under a request on its way: a client that
// does not retry would see it fail. http.Server.Shutdown closes idle
// connections at once, so the router first stops accepting and, for a
// grace period, answers every HTTP/1 request with "Connection: close";
// each busy client's next request is then its last on this process, and
// its following one opens a connection the other process accepts. A
// connection that stays idle for idleCut is closed by the router (HTTP/1.1
// leaves a client that sends at that very moment a race nothing can win;
// idleCut makes it rare). Shutdown runs once every connection has gone, or
// the grace period is over.

// handoffGrace bounds how long a stopping router waits for its client
// connections to close before it shuts them down; idleCut is how long a
// connection may stay idle meanwhile.
const (
	handoffGrace = 2 * time.Second
	idleCut      = 500 * time.Millisecond
)

// connTracker follows a server's open client connections, and closes each
// after its current response once the router is stopping.
type connTracker struct {
	stopping atomic.Bool
	mu       sync.Mutex
	conns    map[net.Conn]connInfo
}

type connInfo struct {
	state http.ConnState
	since time.Time
}

// track installs the tracker's connection hook and response wrapper on srv.
func (c *connTracker) track(srv *http.Server) {
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

// drain makes every further HTTP/1 response close its connection, closes
// connections idle for idleCut, and returns once none is open or at
// deadline.
func (c *connTracker) drain(deadline time.Time) {
	c.stopping.Store(true)
	tick := time.NewTicker(idleCut / 10)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for conn, in := range c.conns {
			if in.state == http.StateIdle && time.Since(in.since) >= idleCut {
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
