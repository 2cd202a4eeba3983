package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// A failed request is either the client's doing or the instance's, and
// the two must never be confused: an instance's failure answers 502 or
// 504, counts as a 5xx and an upstream failure of its colour (which
// analysis judges) and may eject it; a client's broken, aborted, slow or
// oversize request answers 4xx (or nothing, when the client is gone) and
// touches neither the instance's health nor its error rate. Otherwise any
// client could eject instances and roll a healthy release back.

// trackedBody is the request body as the upstream paths read it. It
// records whether any byte was read (which decides whether the request may
// be retried on another instance), whether it was read to its end, and
// the first error reading it, which makes a failed round trip the
// client's.
type trackedBody struct {
	rc     io.ReadCloser
	read   atomic.Bool
	eof    atomic.Bool
	failed atomic.Pointer[bodyError]
	closed atomic.Bool // the handler returned
}

// bodyError is the first error reading a request body.
type bodyError struct{ err error }

var errBodyAfterHandler = errors.New("read of a request body after its handler returned")

func (b *trackedBody) Read(p []byte) (int, error) {
	// The transport's write loop can outlive the handler (an upstream that
	// answers before it has read the body); the server's body must not be
	// read then.
	if b.closed.Load() {
		return 0, errBodyAfterHandler
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		b.read.Store(true)
	}
	switch {
	case err == io.EOF:
		b.eof.Store(true)
	case err != nil:
		b.failed.CompareAndSwap(nil, &bodyError{err})
	}
	return n, err
}

// Close does nothing: the server closes the inbound body after the handler,
// and a retry may still need it.
func (b *trackedBody) Close() error { return nil }

// bodyErr returns the error that reading the request body met, or nil.
func (s *reqState) bodyErr() error {
	if s.body == nil {
		return nil
	}
	if f := s.body.failed.Load(); f != nil {
		return f.err
	}
	return nil
}

// bodyRead reports whether the request body was touched: a byte of it
// read, or reading it failed. Such a request cannot be sent again.
func (s *reqState) bodyRead() bool {
	return s.body != nil && (s.body.read.Load() || s.body.failed.Load() != nil)
}

// midUpload reports whether the request has a body that was not yet sent
// entirely: not read to its end (nor to an error).
func (s *reqState) midUpload() bool {
	return s.body != nil && !s.body.eof.Load() && s.body.failed.Load() == nil
}

// handleError answers a request whose upstream round trip failed (the
// ErrorHandler of ReverseProxy, and pass's). It first decides whose
// failure it was: the request body's read error makes it the client's,
// as does a client that went away or an error after the connection was
// hijacked for an upgrade (writing the 101 to the client); only what is
// left is the instance's.
func (r *Router) handleError(w http.ResponseWriter, out *http.Request, err error) {
	st := w.(*reqState)
	switch {
	case st.bodyErr() != nil:
		r.clientBodyFailed(st, st.bodyErr())
	case st.hijacked:
		r.log.Debug("upgraded connection to the client failed", "color", st.be.color, "instance", st.be.inst.ID, "err", err)
	case st.in.Context().Err() != nil:
		clientGone(st)
	default:
		r.upstreamFailed(st, err)
	}
}

var hdrClose = []string{"close"}

// clientBodyFailed answers a request whose body could not be read: 413
// over a size limit, 408 when the client stopped sending until a read
// deadline, nothing when the client went away, else 400 (malformed
// chunking and the like). The connection is closed after the answer: its
// framing can no longer be trusted.
func (r *Router) clientBodyFailed(st *reqState, err error) {
	r.log.Debug("client request body failed", "color", st.be.color, "err", err)
	var tooLarge *http.MaxBytesError
	status := http.StatusBadRequest
	switch {
	case errors.As(err, &tooLarge):
		status = http.StatusRequestEntityTooLarge
	case isTimeout(err):
		status = http.StatusRequestTimeout
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), isNetOp(err), st.in.Context().Err() != nil:
		clientGone(st)
		return
	}
	if st.status == 0 {
		st.Header()["Connection"] = hdrClose
		st.WriteHeader(status)
	}
}

// isNetOp reports whether err is a failure of the network connection
// itself (a reset, for example), as opposed to the bytes on it.
func isNetOp(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// clientGone records a request whose client left (499, a client error)
// and closes its connection without an answer: net/http would otherwise
// answer 200 to a request nobody served.
func clientGone(st *reqState) {
	st.status = 499
	if st.in.Context().Value(http.ServerContextKey) != nil {
		panic(http.ErrAbortHandler)
	}
}

// upstreamFailed answers a request the instance failed. A connection
// failure ejects the instance, except on a kept-alive connection (the
// instance may have closed it idle) and while the request body was still
// being sent (an instance may close on an upload it refuses, or on a
// client too slow for its own read timeout); when nothing of the request
// can have reached the instance (a dial failure, or a body-less idempotent
// request) the request is retried once on another instance, of the same
// colour when there is one. Otherwise the client gets 502, or 504 on a
// timeout.
func (r *Router) upstreamFailed(st *reqState, err error) {
	timeout := isTimeout(err)
	dial := isDial(err)
	var reused *reusedConnError
	if dial || !timeout {
		if !errors.As(err, &reused) && (dial || !st.midUpload()) {
			st.be.inst.Eject(time.Now().Add(ejectFor))
		}
		if !st.retried && (dial && !st.bodyRead() || st.body == nil && idempotent(st.in.Method)) {
			if r.retry(st) {
				return
			}
		}
	}
	status := http.StatusBadGateway
	if timeout && !dial {
		status = http.StatusGatewayTimeout
	}
	st.upstreamFailed = true
	r.log.Warn("upstream failed", "color", st.be.color, "instance", st.be.inst.ID, "status", status, "err", err)
	if st.status == 0 && !st.hijacked {
		st.WriteHeader(status)
	}
}
