package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"time"
)

// WriteGate is implemented by a Backend whose state can move to another
// process: `cutover upgrade` hands the daemon's controllers and store to
// a new daemon that serves the same API socket. The API passes every
// request that can change state through it (all but GETs, and the upgrade
// request itself).
type WriteGate interface {
	// EnterWrite waits while the state is moving. It returns moved when
	// another process now holds the state: the request must go there.
	// Otherwise the request runs here, and the caller calls leave when it
	// is done. err is ctx's when the client gave up first.
	EnterWrite(ctx context.Context) (leave func(), moved bool, err error)
}

// gateWrites runs the requests that change state through the backend's
// WriteGate, when it has one, and sends those that arrive after the state
// moved on to the process that now holds it.
func (s *Server) gateWrites(next http.Handler) http.Handler {
	gate, ok := s.b.(WriteGate)
	if !ok {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions ||
			r.URL.Path == "/v1/upgrade" {
			next.ServeHTTP(w, r)
			return
		}
		leave, moved, err := gate.EnterWrite(r.Context())
		if err != nil {
			return // the client is gone
		}
		if moved {
			s.forward(w, r)
			return
		}
		defer leave()
		next.ServeHTTP(w, r)
	})
}

// forward sends r to the daemon that took over, over the socket it
// arrived on: once this server has closed its copy of the listener, only
// the new daemon accepts from it. The request is sent as it came (Host,
// token, body), to the local address it came to, so the new daemon's Host
// and client checks see what this one saw.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.lnClosed:
	case <-r.Context().Done():
		return
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		s.writeError(w, r, errorf(http.StatusServiceUnavailable, CodeUnavailable, "the daemon was upgraded: send the request again"))
		return
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = local.String()
		},
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp", local.String())
			},
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Error("sending a request on to the upgraded daemon", "method", r.Method, "path", r.URL.Path, "err", err)
			s.writeError(w, r, errorf(http.StatusBadGateway, CodeUnavailable,
				fmt.Sprintf("the daemon was upgraded and the new one did not answer: %v", err)))
		},
	}
	s.log.Debug("sending a request on to the upgraded daemon", "method", r.Method, "path", r.URL.Path)
	proxy.ServeHTTP(w, r)
}
