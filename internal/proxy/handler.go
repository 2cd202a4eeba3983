package proxy

import (
	"bufio"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// Handler returns the public handler: weighted, sticky routing across both
// colours, with the fallback page when no colour has a healthy instance.
func (r *Router) Handler() http.Handler { return publicHandler{r} }

// PreviewHandler returns the preview handler: it reaches only the preview
// colour (the one SetPreview chose; the live colour's other until then) and
// answers 503 when that colour has no healthy instance or is drained.
func (r *Router) PreviewHandler() http.Handler { return previewHandler{r} }

type publicHandler struct{ r *Router }

func (h publicHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) { h.r.serve(w, req, false) }

type previewHandler struct{ r *Router }

func (h previewHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) { h.r.serve(w, req, true) }

// rngUint64 is the runtime's per-thread fast random source (not
// cryptographic; it only spreads load and splits traffic).
func rngUint64() uint64 { return rand.Uint64() }

func (r *Router) serve(w http.ResponseWriter, req *http.Request, preview bool) {
	start := time.Now()
	now := start.UnixNano()
	rnd := rngUint64()
	var bucket uint32
	if !preview {
		bucket = r.stickyBucket(w, req, rnd)
	}
	var (
		in *route.Instance
		c  route.Color
	)
	for attempt := 0; ; attempt++ {
		t := r.table.Load()
		if preview {
			c = t.Preview()
			in = t.PickIn(c, rnd, now)
		} else {
			in, c = t.Pick(bucket, rnd, now)
		}
		if in == nil {
			r.serveFallback(w)
			return
		}
		in.Acquire()
		// A drain swaps the table and then waits for in-flight requests
		// to end; re-reading the table after Acquire closes the window in
		// which a request chose from the old table but was not yet counted.
		if nt := r.table.Load(); nt == t || attempt == 2 || nt.Contains(in) {
			break
		}
		in.Release()
	}
	if req.ProtoMajor == 1 && req.TransferEncoding != nil {
		closeAfterChunked(w)
	}
	st := r.states.Get().(*reqState)
	*st = reqState{w: w, in: req, be: in.Value.(*backend), color: c, preview: preview}
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
		st.body = &trackedBody{rc: req.Body}
		req.Body = st.body
	}
	r.recorder(preview, c).Start()
	defer r.finish(st, start)
	st.be.forward(st, req)
}

// closeAfterChunked makes the server close the client connection after
// answering an HTTP/1 request with a chunked body. RFC 9112 6.3 requires
// it after a request with both Content-Length and Transfer-Encoding (a
// proxy in front may have framed it by its Content-Length, and the rest
// of the connection is then a smuggled request), but net/http deletes the
// Content-Length of such a request before the handler runs, so the router
// cannot tell them from other chunked requests; those are rare (browsers
// do not send them) and pay one new connection each.
func closeAfterChunked(w http.ResponseWriter) { w.Header()["Connection"] = hdrClose }

// finish records the request and releases its instance. It runs deferred,
// so a stream cut by a drain (forward panics with ErrAbortHandler)
// is recorded too.
//
// The latency recorded is the time to the full response, except for
// long-lived streams (upgraded connections such as WebSocket, and event
// streams), where it is the time to the response headers: a session's
// length says nothing about the instance's speed, and one stream ending
// during a step would otherwise look like a request minutes slow to the
// p99 check. Other responses without a length (chunked) keep their full
// duration, since generating the body is part of what the user waits for.
func (r *Router) finish(st *reqState, start time.Time) {
	d := time.Since(start)
	if !st.headersAt.IsZero() {
		d = st.headersAt.Sub(start)
	}
	if st.body != nil {
		st.body.closed.Store(true)
	}
	st.be.inst.Release()
	status := st.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	r.recorder(st.preview, st.color).Done(status, d, st.upstreamFailed)
	if !st.preview {
		r.latSum[st.color].Add(uint64(d))
	}
	*st = reqState{}
	r.states.Put(st)
}

// recorder returns the counters a request of colour c is recorded in:
// preview requests have their own, so that analysis sees public traffic only.
func (r *Router) recorder(preview bool, c route.Color) *metrics.Recorder {
	if preview {
		return &r.prev[c&1]
	}
	return &r.rec[c&1]
}

// stickyBucket returns the request's sticky bucket: from its cookie, or
// from a fresh random cookie value that is sent back with Set-Cookie, so
// clients that never return the cookie are split per request. With
// stickiness disabled the bucket is random.
func (r *Router) stickyBucket(w http.ResponseWriter, req *http.Request, rnd uint64) uint32 {
	if r.cookie == "" {
		return uint32(rnd>>32) % route.Buckets
	}
	if v, ok := cookieValue(req.Header["Cookie"], r.cookie); ok {
		return route.Bucket(v)
	}
	var buf [128]byte
	b := append(buf[:0], r.cookie...)
	b = append(b, '=')
	vstart := len(b)
	b = strconv.AppendUint(b, rngUint64()|1<<63, 36)
	vend := len(b)
	b = append(b, r.cookieSfx...)
	s := string(b)
	w.Header()["Set-Cookie"] = []string{s}
	return route.Bucket(s[vstart:vend])
}

// cookieValue finds a cookie's value in Cookie header lines without
// allocating. Values in double quotes are unquoted.
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if v != "" {
				return v, true
			}
		}
	}
	return "", false
}

var (
	hdrHTML       = []string{"text/html; charset=utf-8"}
	hdrRetryAfter = []string{"5"}
	hdrNoStore    = []string{"no-store"}
)

// serveFallback answers 503 with Retry-After and the fallback page.
func (r *Router) serveFallback(w http.ResponseWriter) {
	r.fallbacks.Add(1)
	h := w.Header()
	h["Content-Type"] = hdrHTML
	h["Retry-After"] = hdrRetryAfter
	h["Cache-Control"] = hdrNoStore
	page := r.settings().fallback
	h["Content-Length"] = []string{strconv.Itoa(len(page))}
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(page)
}

const builtinFallback = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:4em auto">
<h1>Temporarily unavailable</h1>
<p>The service is being updated or is briefly down. Please try again in a few seconds.</p>
</body></html>
`

// reqState is the per-request ResponseWriter handed to ReverseProxy. It
// records the status for metrics, carries what a retry needs, and tracks
// upgraded connections so that a drain can cut them. Pooled; never
// referenced after the handler returns.
type reqState struct {
	w              http.ResponseWriter
	in             *http.Request
	be             *backend
	body           *trackedBody
	color          route.Color
	status         int
	headersAt      time.Time // set for streams: latency ends here
	preview        bool
	retried        bool
	hijacked       bool
	upstreamFailed bool
}

func (s *reqState) Header() http.Header { return s.w.Header() }

func (s *reqState) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.w.WriteHeader(code)
}

func (s *reqState) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.w.Write(b)
}

// FlushError flushes buffered response data to the client.
func (s *reqState) FlushError() error { return http.NewResponseController(s.w).Flush() }

// Flush implements http.Flusher.
func (s *reqState) Flush() { _ = s.FlushError() }

// Unwrap lets http.ResponseController reach the server's writer.
func (s *reqState) Unwrap() http.ResponseWriter { return s.w }

// Hijack takes over the client connection for a protocol upgrade and
// tracks it until it is closed.
func (s *reqState) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	s.hijacked = true
	s.status = http.StatusSwitchingProtocols
	s.headersAt = time.Now() // ReverseProxy hijacks once the instance answered 101
	tc := &trackedConn{Conn: conn, br: brw.Reader, be: s.be}
	s.be.track(tc)
	return tc, brw, nil
}
