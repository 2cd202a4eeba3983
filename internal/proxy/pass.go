package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"
)

// forward sends the request to the backend's instance and streams the
// answer back through st. Protocol upgrades (WebSocket and the like) go
// through httputil.ReverseProxy, whose 101 handling, hijack and two-way
// copy we keep; every other request takes pass, which does the same work
// as ReverseProxy for a plain request with a fraction of its allocations.
func (be *backend) forward(st *reqState, req *http.Request) {
	if _, up := req.Header["Upgrade"]; up {
		if !isPrintASCII(upgradeType(req.Header)) {
			// ReverseProxy refuses it through the ErrorHandler, as if the
			// instance had failed; it is the client's error.
			st.WriteHeader(http.StatusBadRequest)
			return
		}
		be.rp.ServeHTTP(st, req)
		return
	}
	be.pass(st, req)
}

// isPrintASCII reports whether s holds printable ASCII only.
func isPrintASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// outbound is what pass allocates per request besides its header map:
// the outbound request (for the h1 engine; the transport's gets a new
// context), the URL, the X-Forwarded-* values and the client trace that
// relays 1xx answers.
type outbound struct {
	req   http.Request
	url   url.URL
	fwd   forwardValues
	trace httptrace.ClientTrace
	rw    http.ResponseWriter

	mu   sync.Mutex // guards done and rw's header against a late 1xx
	done bool       // the round trip returned
}

// got1xx relays an informational answer (103 Early Hints) to the client,
// as ReverseProxy does, until the round trip has returned.
func (o *outbound) got1xx(code int, header textproto.MIMEHeader) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return nil
	}
	h := o.rw.Header()
	addHeader(h, http.Header(header))
	o.rw.WriteHeader(code)
	clear(h) // WriteHeader does not clear it for 1xx
	return nil
}

// pass forwards a request that asks for no protocol upgrade. It keeps
// ReverseProxy's contract: hop-by-hop headers (and those named in
// Connection) are dropped both ways, the outbound header is the one
// outHeader prepares for every upstream path, 1xx answers are relayed, trailers pass both ways, event
// streams and responses without a length are flushed on every write, a
// failed round trip goes to handleError (which may retry), and a body copy
// that fails midway aborts the handler with http.ErrAbortHandler.
func (be *backend) pass(st *reqState, req *http.Request) {
	r := be.router
	o := &outbound{rw: st}
	h1 := be.h1 != nil && h1Eligible(req)
	var out *http.Request
	if h1 {
		// The h1 engine relays 1xx answers itself; no trace, no new context.
		o.req = *req
		out = &o.req
	} else {
		o.trace.Got1xxResponse = o.got1xx
		out = req.WithContext(httptrace.WithClientTrace(req.Context(), &o.trace))
	}
	o.url = *req.URL
	o.url.Scheme, o.url.Host = r.scheme, be.inst.Addr
	out.URL = &o.url
	out.Header = be.outHeader(req, &o.fwd)
	if req.ContentLength == 0 {
		out.Body = nil // a nil body lets the transport retry on a stale connection
	}
	if req.Trailer != nil {
		out.Trailer = req.Trailer.Clone()
	}
	out.Close = false

	var (
		res *http.Response
		err error
	)
	if h1 {
		res, err = be.h1.roundTrip(st, out, o)
	} else {
		res, err = r.upstream.RoundTrip(out)
	}
	o.mu.Lock()
	o.done = true
	o.mu.Unlock()
	if err != nil {
		r.handleError(st, out, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Only requests with an Upgrade header may switch; they take
		// ReverseProxy's path.
		res.Body.Close()
		r.handleError(st, out, fmt.Errorf("backend tried to switch protocol %q when none was requested", res.Header.Get("Upgrade")))
		return
	}
	removeHopHeaders(res.Header)
	_ = be.modifyResponse(res) // never fails; tracks streams for drains

	dst := st.Header()
	for k, vv := range res.Header {
		// The response's value slices are ours now; share them rather
		// than copy them. The server clones the map when it writes it.
		if prev, ok := dst[k]; ok {
			dst[k] = append(prev, vv...)
		} else {
			dst[k] = vv
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		// The transport moves the Trailer header into res.Trailer's keys.
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	sse := isEventStream(res.Header["Content-Type"])
	if sse {
		st.headersAt = time.Now() // a stream's latency is its time to headers
	}
	st.WriteHeader(res.StatusCode)

	flush := res.ContentLength == -1 || sse
	if err := r.copyBody(st, res.Body, flush); err != nil {
		defer res.Body.Close()
		if req.Context().Value(http.ServerContextKey) == nil {
			r.log.Debug("body copy failed outside a server; not aborting", "err", err)
			return
		}
		panic(http.ErrAbortHandler) // the client must see a cut response, not a short one
	}
	res.Body.Close() // now, to fill res.Trailer

	if len(res.Trailer) > 0 {
		// Force chunking so that net/http sends the trailers rather than
		// a Content-Length for a short body.
		_ = st.FlushError()
	}
	if len(res.Trailer) == announced {
		addHeader(dst, res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// isEventStream reports whether a Content-Type is text/event-stream,
// whatever its parameters, without mime.ParseMediaType's allocations.
func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	base, _, _ := strings.Cut(ct[0], ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// addHeader appends src's values to dst.
func addHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// copyBody streams a response body to the client with a pooled buffer.
// With flush set (event streams, responses without a length) the header
// goes out at once and every chunk is flushed as it arrives. It returns
// write errors and read errors other than EOF.
func (r *Router) copyBody(st *reqState, src io.Reader, flush bool) error {
	if flush {
		_ = st.FlushError()
	}
	buf := r.bufs.Get()
	defer r.bufs.Put(buf)
	for {
		nr, rerr := src.Read(buf)
		if rerr != nil && rerr != io.EOF && !errors.Is(rerr, context.Canceled) {
			r.log.Debug("upstream body read failed", "err", rerr)
		}
		if nr > 0 {
			nw, werr := st.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if flush {
				_ = st.FlushError()
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}
