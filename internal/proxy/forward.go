package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// backend is the router's forwarding state for one instance; it is the
// route.Instance's Value.
type backend struct {
	inst      *route.Instance
	color     route.Color
	rp        *httputil.ReverseProxy
	h1        *h1pool // plain requests to plain-HTTP instances; nil with upstream TLS
	router    *Router
	stopWatch context.CancelFunc
	// drained is closed once a retired backend has no request in flight
	// or its drain deadline passed (see Router.WaitRetired); nil until
	// it is retired.
	drained chan struct{}

	mu      sync.Mutex
	streams map[io.Closer]struct{} // long-lived responses and upgraded connections
}

func (r *Router) newBackend(c route.Color, b Backend) *backend {
	be := &backend{color: c, router: r, stopWatch: func() {}, streams: map[io.Closer]struct{}{}}
	be.inst = route.NewInstance(b.ID, b.Addr, be)
	if r.scheme == "http" {
		be.h1 = newH1Pool(b.Addr, r.transport.Load(), &r.upHeader)
	}
	be.rp = &httputil.ReverseProxy{
		Rewrite:        be.rewrite,
		Transport:      r.upstream,
		BufferPool:     &r.bufs,
		ErrorHandler:   r.handleError,
		ModifyResponse: be.modifyResponse,
		ErrorLog:       slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	return be
}

// modifyResponse registers responses that may outlive a drain (no length,
// or an event stream) so that a drain deadline can cut them.
func (be *backend) modifyResponse(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols {
		return nil // the body is the upgraded connection; tracked at hijack
	}
	if res.ContentLength == -1 || isEventStream(res.Header["Content-Type"]) {
		s := &stream{ReadCloser: res.Body, be: be}
		be.track(s)
		res.Body = s
	}
	return nil
}

func (be *backend) track(c io.Closer) {
	be.mu.Lock()
	be.streams[c] = struct{}{}
	be.mu.Unlock()
}

func (be *backend) untrack(c io.Closer) {
	be.mu.Lock()
	delete(be.streams, c)
	be.mu.Unlock()
}

// closeIdle closes the instance's idle upstream connections; with final
// set (the instance left for good) it keeps none from now on.
func (be *backend) closeIdle(final bool) {
	if be.h1 != nil {
		be.h1.closeIdle(final)
	}
}

// cutStreams closes every tracked stream of the instance and returns how many.
func (be *backend) cutStreams() int {
	be.mu.Lock()
	cs := make([]io.Closer, 0, len(be.streams))
	for c := range be.streams {
		cs = append(cs, c)
	}
	be.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
	return len(cs)
}

// stream is a tracked upstream response body.
type stream struct {
	io.ReadCloser
	be   *backend
	once sync.Once
}

func (s *stream) Close() error {
	s.once.Do(func() { s.be.untrack(s) })
	return s.ReadCloser.Close()
}

// trackedConn is a tracked upgraded (hijacked) client connection. Its
// reads start with what the server had already read past the upgrade
// request (a WebSocket client need not wait for the 101 to send), which
// ReverseProxy, copying from the bare connection, would drop.
type trackedConn struct {
	net.Conn
	br   *bufio.Reader // the server's buffer; nil once empty
	be   *backend
	once sync.Once
}

// Read returns the bytes the server buffered first, then reads the
// connection. Only ReverseProxy's copy to the instance reads it.
func (c *trackedConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p) // from the buffer only: it is not empty
		}
		c.br = nil
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.be.untrack(c) })
	return c.Conn.Close()
}

// retry forwards the request again to another instance, if there is one.
func (r *Router) retry(st *reqState) bool {
	t := r.table.Load()
	now := time.Now().UnixNano()
	next, _ := t.Retry(st.be.inst, st.be.color, !st.preview, rngUint64(), now)
	if next == nil {
		return false
	}
	st.retried = true
	next.Acquire()
	st.be.inst.Release()
	st.be = next.Value.(*backend)
	st.be.forward(st, st.in)
	return true
}

func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// bufferPool hands ReverseProxy 32 KiB copy buffers. It pools array
// pointers so that neither Get nor Put allocates.
type bufferPool struct{ p sync.Pool }

const bufSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[bufSize]byte); ok {
		return v[:]
	}
	return new([bufSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != bufSize {
		return
	}
	b.p.Put((*[bufSize]byte)(buf[:bufSize]))
}
