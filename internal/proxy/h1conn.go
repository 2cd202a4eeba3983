package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// h1MaxBody is the largest request body the h1 engine sends. It writes the
// request before it reads the answer, on one goroutine, so a body must fit
// the socket buffers for an instance that answers without reading it (an
// early 413) not to stall the write; larger and unknown-length bodies take
// the transport, which writes and reads concurrently.
const h1MaxBody = 64 << 10

// h1 limits, as the transport has them.
const (
	h1MaxIdle        = 256      // idle connections per instance
	h1MaxHeaderBytes = 10 << 20 // response header bytes, 1xx answers included
	h1Max1xx         = 5        // informational answers before the final one
)

var (
	errH1HeaderTooLarge = errors.New("upstream response headers exceed 10 MiB")
	errH1Too1xx         = errors.New("upstream sent too many 1xx informational responses")
	errH1BodyClosed     = errors.New("upstream response body closed")
)

// h1Eligible reports whether the h1 engine may send req: a plain request
// (no Upgrade; checked by forward) with a small body of known length, no
// request trailers and no Expect (whose 100-continue dance the transport
// does).
func h1Eligible(req *http.Request) bool {
	if req.ContentLength < 0 || req.ContentLength > h1MaxBody || req.Trailer != nil {
		return false
	}
	_, expect := req.Header["Expect"]
	return !expect
}

// h1pool is an instance's pool of idle upstream HTTP/1.1 connections, the
// engine of plain requests to plain-HTTP instances. A request takes an idle
// connection (LIFO) or dials one, writes the request and reads the answer
// on the handler's goroutine, and gives the connection back once the body
// was read to its end, saving the transport's two goroutine handoffs per
// request. It is safe for concurrent use.
type h1pool struct {
	addr          string
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout *atomic.Int64 // nanoseconds, read per request (the router's upHeader); 0: none
	idleTimeout   time.Duration
	max           int

	mu     sync.Mutex
	idle   []*h1conn
	closed bool // the instance left for good: nothing goes back in
}

func newH1Pool(addr string, t *http.Transport, headerTimeout *atomic.Int64) *h1pool {
	return &h1pool{addr: addr, dial: unguarded(t.DialContext), headerTimeout: headerTimeout,
		idleTimeout: t.IdleConnTimeout, max: h1MaxIdle}
}

// h1conn is one upstream connection. Between requests it belongs to the
// pool; during one, to the request's goroutine (and its response body).
type h1conn struct {
	net.Conn
	pool    *h1pool
	br      *bufio.Reader
	bw      *bufio.Writer
	limit   int64 // bytes the reader may still read; bounds response headers
	reused  bool
	abortFn func() // c.abort, made once so that AfterFunc does not allocate it
	idleT   *time.Timer
	peek    idlePeek // checks the connection is clean before each reuse
}

// Read feeds br, within c.limit.
func (c *h1conn) Read(p []byte) (int, error) {
	if c.limit <= 0 {
		return 0, errH1HeaderTooLarge
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.Conn.Read(p)
	c.limit -= int64(n)
	return n, err
}

// abort unblocks whatever the connection is doing, for good: the client
// went away.
func (c *h1conn) abort() { _ = c.Conn.Close() }

// get returns an idle connection, or a new one when there is none or fresh
// is set. An idle connection is reused only when it is provably clean: the
// instance has not closed it and nothing is waiting on it. Bytes waiting on
// an idle connection answer no request (an instance that sent more than it
// announced, or a body after HEAD, 204 or 304); read as the next request's
// response they would hand one client another's answer, so such a
// connection is closed, as http.Transport closes it.
func (p *h1pool) get(ctx context.Context, fresh bool) (*h1conn, error) {
	for !fresh {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		c.idleT.Stop()
		p.mu.Unlock()
		if !c.peek.isClean() {
			_ = c.Conn.Close()
			continue
		}
		c.reused = true
		return c, nil
	}
	nc, err := p.dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := &h1conn{Conn: nc, pool: p}
	c.br = bufio.NewReaderSize(c, 32<<10)
	c.bw = bufio.NewWriterSize(nc, 8<<10)
	c.abortFn = c.abort
	c.peek.init(nc)
	return c, nil
}

// put gives a connection whose exchange ended cleanly back to the pool,
// or closes it when the pool is full or closed.
func (p *h1pool) put(c *h1conn) {
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.max {
		p.mu.Unlock()
		_ = c.Conn.Close()
		return
	}
	p.idle = append(p.idle, c)
	if c.idleT == nil {
		c.idleT = time.AfterFunc(p.idleTimeout, c.expire)
	} else {
		c.idleT.Reset(p.idleTimeout)
	}
	p.mu.Unlock()
}

// expire closes the connection if it is still idle.
func (c *h1conn) expire() {
	p := c.pool
	p.mu.Lock()
	i := slices.Index(p.idle, c)
	if i >= 0 {
		p.idle = slices.Delete(p.idle, i, i+1)
	}
	p.mu.Unlock()
	if i >= 0 {
		_ = c.Conn.Close()
	}
}

// closeIdle closes the idle connections. With final set the pool takes
// none back afterwards: connections in use are closed when their request
// ends.
func (p *h1pool) closeIdle(final bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if final {
		p.closed = true
	}
	for _, c := range idle {
		c.idleT.Stop()
	}
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.Conn.Close()
	}
}

// roundTrip sends out and returns the answer with its body unread, as
// http.Transport.RoundTrip does, relaying 1xx answers through o. Errors
// keep their kind (a dial failure is a *net.OpError with Op "dial"; a
// header timeout or a cancellation is a timeout) so that handleError maps
// and retries them as before. A reused connection that fails before the
// instance can have processed the request (the write fails, or it closes
// before any answer byte to a replayable request) is retried once on a new
// connection: the instance closed it while it was idle.
func (p *h1pool) roundTrip(st *reqState, out *http.Request, o *outbound) (*http.Response, error) {
	ctx := out.Context()
	replayable := out.Body == nil && idempotent(out.Method)
	fresh := false
	for {
		c, err := p.get(ctx, fresh)
		if err != nil {
			return nil, err
		}
		res, retry, err := c.exchange(ctx, st, out, o, replayable)
		if err == nil {
			return res, nil
		}
		if c.reused && !retry && ctx.Err() == nil {
			return nil, &reusedConnError{err}
		}
		if !retry || !c.reused || ctx.Err() != nil {
			return nil, err
		}
		fresh = true
	}
}

// reusedConnError is a failure on a kept-alive connection that could not be
// retried (the request may have been processed). It answers the client
// with 502 like any connection failure, but it does not eject the
// instance: an instance closing an idle connection says nothing about its
// health, and the next request's fresh dial would show a dead one.
type reusedConnError struct{ err error }

func (e *reusedConnError) Error() string { return "reused upstream connection: " + e.err.Error() }
func (e *reusedConnError) Unwrap() error { return e.err }

// exchange writes out on c and reads the answer's header. On error the
// connection is closed and retry says whether nothing of the request can
// have been processed.
func (c *h1conn) exchange(ctx context.Context, st *reqState, out *http.Request, o *outbound, replayable bool) (res *http.Response, retry bool, err error) {
	stop := context.AfterFunc(ctx, c.abortFn)
	fail := func(err error, retry bool) (*http.Response, bool, error) {
		stop()
		_ = c.Conn.Close()
		return nil, retry, err
	}
	early := false
	if err := c.send(out); err != nil {
		if st.bodyErr() != nil || !c.answeredEarly() {
			return fail(err, !st.bodyRead() && !isTimeout(err))
		}
		early = true
	}
	p := c.pool
	headerTimeout := time.Duration(p.headerTimeout.Load())
	if headerTimeout > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(headerTimeout))
	}
	c.limit = h1MaxHeaderBytes
	if _, err := c.br.Peek(1); err != nil {
		// Nothing came back: a stale connection when it closed at once.
		return fail(err, replayable && !isTimeout(err))
	}
	for n1xx := 0; ; n1xx++ {
		res, err = http.ReadResponse(c.br, out)
		if err != nil {
			return fail(err, false)
		}
		if res.StatusCode < 100 || res.StatusCode > 199 || res.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if n1xx == h1Max1xx {
			return fail(errH1Too1xx, false)
		}
		_ = o.got1xx(res.StatusCode, textproto.MIMEHeader(res.Header))
		c.limit = h1MaxHeaderBytes
	}
	c.limit = 1 << 62
	if headerTimeout > 0 {
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
	reuse := !early && !res.Close && !out.Close && res.StatusCode != http.StatusSwitchingProtocols
	if res.Body == http.NoBody {
		c.release(stop, reuse)
		return res, false, nil
	}
	res.Body = &h1body{rc: res.Body, c: c, stop: stop, reuse: reuse}
	return res, false, nil
}

// send writes out (header and body) on c.
func (c *h1conn) send(out *http.Request) error {
	if err := out.Write(c.bw); err != nil {
		return err
	}
	return c.bw.Flush()
}

// answeredEarly reports, after sending a request failed, whether the
// instance had already answered it: an instance refusing an upload (413,
// or 408 for a client too slow for it) answers and closes without reading
// the rest, and the client must get that answer, not a 502. The answer is
// read as usual and the connection closed after it.
func (c *h1conn) answeredEarly() bool {
	_ = c.Conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	c.limit = h1MaxHeaderBytes
	_, err := c.br.Peek(1)
	_ = c.Conn.SetReadDeadline(time.Time{})
	return err == nil
}

// release ends the connection's exchange: back to the pool when it may be
// reused and the client's cancellation did not already close it.
func (c *h1conn) release(stop func() bool, reuse bool) {
	if !stop() || !reuse || c.br.Buffered() > 0 {
		_ = c.Conn.Close()
		return
	}
	c.reused = false
	c.pool.put(c)
}

// h1body is an answer's body on an h1conn. Read to its end, it gives the
// connection back; closed before, it closes the connection, which also
// unblocks a Read in progress (a drain cutting a stream).
type h1body struct {
	rc    io.ReadCloser
	c     *h1conn
	stop  func() bool
	reuse bool
	state atomic.Int32 // 0 reading, 1 connection released, 2 closed
}

func (b *h1body) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case 1:
		return 0, io.EOF
	case 2:
		return 0, errH1BodyClosed
	}
	n, err := b.rc.Read(p)
	if err == io.EOF && b.state.CompareAndSwap(0, 1) {
		b.c.release(b.stop, b.reuse)
	}
	return n, err
}

// Close closes the connection unless the body was read to its end. It
// does not close rc, which would read the rest of the body to keep the
// connection.
func (b *h1body) Close() error {
	if b.state.CompareAndSwap(0, 2) {
		b.stop()
		_ = b.c.Conn.Close()
	}
	return nil
}
