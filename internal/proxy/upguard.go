package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
)

// The transport path (http.Transport: upstream TLS, bodies of unknown
// length, trailers, upgrades, health probes) has the desync the h1
// engine's idlePeek closes: bytes an instance sends on an idle connection
// answer no request, and http.Transport notices them only when its read
// goroutine gets to run. On a busy machine the next request can take the
// connection first, and the stray bytes become its response — another
// client's answer, or a forged one. guardConn closes that window at the
// only places the transport lets us: the connection it reads and writes.
// What it cannot see: bytes that reached the transport's buffer in the
// same read as the end of the previous response. The transport's reader
// looks at those at once, so that window is far narrower, but it is there.

// errUnasked fails a read or write on an upstream connection that carried
// bytes while no request was outstanding. A write fails before anything
// is sent, so the transport retries the request on another connection
// (rewinding its body through GetBody).
var errUnasked = errors.New("upstream connection carried bytes while no request was outstanding; not reused")

// guardConn is an upstream connection of the transport path. It is idle
// from the moment the transport gives it back to its pool (or hands it to
// another request) until that request's first write. A read that finds
// data while it is idle marks it dirty without consuming it, and so does
// the first write when data is waiting; a dirty connection refuses every
// read and write, so the transport closes it.
type guardConn struct {
	net.Conn
	peek upPeek

	mu    sync.Mutex
	gen   uint64 // requests that took the connection
	idle  bool
	dirty bool
}

// Read waits, while the connection is idle, until something arrives and
// looks at it before reading: data is unasked.
func (g *guardConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	idle, dirty := g.idle, g.dirty
	g.mu.Unlock()
	if idle && !dirty {
		data, err := g.peek.wait()
		if err != nil {
			return 0, err
		}
		g.mu.Lock()
		if g.idle && data {
			g.dirty = true
		}
		dirty = g.dirty
		g.mu.Unlock()
	}
	if dirty {
		return 0, errUnasked
	}
	return g.Conn.Read(p)
}

// Write ends the idle time; the first write after it goes out only when
// nothing is waiting on the connection (neither data nor the instance's
// close: a request written then would fail after being sent).
func (g *guardConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	if g.idle {
		if !g.dirty && g.peek.waiting() {
			g.dirty = true
		}
		g.idle = false
	}
	dirty := g.dirty
	g.mu.Unlock()
	if dirty {
		return 0, errUnasked
	}
	return g.Conn.Write(p)
}

// taken records that a request got the connection and returns its
// number; a kept-alive connection is idle until the request writes.
func (g *guardConn) taken(reused bool) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen++
	if reused {
		g.idle = true
	}
	return g.gen
}

// pooled records that request gen's response ended and the transport
// pooled the connection, unless a later request already took it.
func (g *guardConn) pooled(gen uint64) {
	g.mu.Lock()
	if g.gen == gen {
		g.idle = true
	}
	g.mu.Unlock()
}

// guardOf returns the guardConn under a connection the transport got
// (directly, or under its TLS client), or nil.
func guardOf(c net.Conn) *guardConn {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	g, _ := c.(*guardConn)
	return g
}

// guardConns wraps the connections dial makes in guardConns, where
// they can be peeked; others pass as they are.
func guardConns(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		g := &guardConn{Conn: c}
		if !g.peek.init(c) {
			return c, nil
		}
		return g, nil
	}
}

// unguarded undoes guardConns for the h1 engine, which reads and writes
// its connections itself and peeks them before each reuse.
func unguarded(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if g, ok := c.(*guardConn); ok {
			return g.Conn, err
		}
		return c, err
	}
}

// connUse follows one request's connection for the trace hooks: GotConn
// runs on the caller's goroutine, PutIdleConn on the transport's reader.
type connUse struct {
	g   atomic.Pointer[guardConn]
	gen atomic.Uint64
}

func (u *connUse) gotConn(info httptrace.GotConnInfo) {
	if g := guardOf(info.Conn); g != nil {
		u.gen.Store(g.taken(info.Reused))
		u.g.Store(g)
	}
}

func (u *connUse) putIdleConn(err error) {
	if g := u.g.Load(); g != nil && err == nil {
		g.pooled(u.gen.Load())
	}
}

// guarded returns req ready for the transport: traced so that its
// connection knows when it goes idle, and with a body the transport can
// send again if the connection it picked refuses the first write.
func guarded(req *http.Request) *http.Request {
	u := new(connUse)
	trace := &httptrace.ClientTrace{GotConn: u.gotConn, PutIdleConn: u.putIdleConn}
	out := req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	if out.Body != nil && out.Body != http.NoBody && out.GetBody == nil {
		rb := &replayBody{rc: out.Body}
		out.Body, out.GetBody = rb, rb.replay
	}
	return out
}

// replayMax bounds what replayBody keeps. The transport's first write to
// a connection comes at the latest when its 32 KiB write buffer fills, so
// a refused first write never follows more body than this.
const replayMax = 64 << 10

// replayBody keeps the first bytes the transport reads from a request
// body so that GetBody can start the body again on another connection.
type replayBody struct {
	rc io.ReadCloser

	mu   sync.Mutex
	kept []byte
	over bool // more than replayMax read: no replay
	eof  bool
}

func (b *replayBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.mu.Lock()
	if !b.over {
		if len(b.kept)+n > replayMax {
			b.over, b.kept = true, nil
		} else {
			b.kept = append(b.kept, p[:n]...)
		}
	}
	if err == io.EOF {
		b.eof = true
	}
	b.mu.Unlock()
	return n, err
}

// Close closes the client's body unless a replay may still read from it
// (the transport closes a body before it asks GetBody for a new one); the
// server closes it in any case when the handler returns.
func (b *replayBody) Close() error {
	b.mu.Lock()
	replayable := !b.over && !b.eof
	b.mu.Unlock()
	if replayable {
		return nil
	}
	return b.rc.Close()
}

// replay returns the body from its start: what was read, then the rest.
func (b *replayBody) replay() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over {
		return nil, errors.New("request body too long to send again")
	}
	kept := bytes.NewReader(bytes.Clone(b.kept))
	if b.eof {
		return &replayBody{rc: io.NopCloser(kept)}, nil
	}
	return &replayBody{rc: struct {
		io.Reader
		io.Closer
	}{io.MultiReader(kept, b.rc), b.rc}}, nil
}
