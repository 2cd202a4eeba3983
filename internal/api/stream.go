package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// errStreamClosed is what a stream writer returns after its handler ended.
var errStreamClosed = errors.New("stream closed")

// streamContext returns the context of a long-lived response: it ends when
// the client goes away or the server shuts down. It also lifts the
// connection's read deadline, which would otherwise cancel the request once
// the server's ReadTimeout passes.
func (s *Server) streamContext(w http.ResponseWriter, r *http.Request) (context.Context, context.CancelFunc) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{}) // unsupported writers have no deadline to lift
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		select {
		case <-s.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// streamWriter writes a streamed response: headers go out with the first
// write (so an error before any output still gets its status code), every
// write is flushed and must finish within the write timeout, so a client
// that stops reading cannot hold a backend goroutine forever.
type streamWriter struct {
	w           http.ResponseWriter
	rc          *http.ResponseController
	timeout     time.Duration
	contentType string

	mu      sync.Mutex
	started bool
	closed  bool
}

func newStreamWriter(w http.ResponseWriter, contentType string, timeout time.Duration) *streamWriter {
	return &streamWriter{w: w, rc: http.NewResponseController(w), timeout: timeout, contentType: contentType}
}

// Write sends p to the client at once. It is safe for concurrent use.
func (sw *streamWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.closed {
		return 0, errStreamClosed
	}
	sw.startLocked()
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	n, err := sw.w.Write(p)
	if err == nil {
		err = sw.rc.Flush()
	}
	return n, err
}

// start commits the headers without a body, so the client sees the stream
// open before the first output.
func (sw *streamWriter) start() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.startLocked()
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
	return sw.rc.Flush()
}

func (sw *streamWriter) startLocked() {
	if sw.started {
		return
	}
	sw.started = true
	h := sw.w.Header()
	h.Set("Content-Type", sw.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	sw.w.WriteHeader(http.StatusOK)
}

// close makes later writes fail and reports whether anything was sent.
func (sw *streamWriter) close() (started bool) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.closed = true
	return sw.started
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	name, err := serviceName(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var color *route.Color
	if v := q.Get("color"); v != "" {
		c, err := route.ParseColor(v)
		if err != nil {
			return errorf(http.StatusBadRequest, CodeInvalid, "color: "+err.Error())
		}
		color = &c
	}
	follow, err := parseBool(q.Get("follow"))
	if err != nil {
		return err
	}
	ctx, cancel := s.streamContext(w, r)
	defer cancel()
	sw := newStreamWriter(w, "text/plain; charset=utf-8", s.writeTO)
	err = s.b.Logs(ctx, name, color, follow, sw)
	started := sw.close()
	if err != nil && ctx.Err() == nil {
		if !started {
			return err // nothing sent yet: the client gets the status code
		}
		s.log.Warn("api log stream ended", "service", name, "err", err)
	}
	if !started {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK) // no output at all
	}
	return nil
}

func parseBool(v string) (bool, error) {
	switch v {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("follow %q: want 1 or 0", v))
}

// events streams deploy events as server-sent events: each one is a line
// "data: <json>" and a blank line; a comment line keeps idle connections
// (and the proxies between) alive.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	service := r.URL.Query().Get("service")
	if service != "" && !validServiceName(service) {
		return errorf(http.StatusNotFound, CodeUnknownService, fmt.Sprintf("unknown service %q", service))
	}
	ctx, cancel := s.streamContext(w, r)
	defer cancel()
	ch, err := s.b.Subscribe(ctx, service)
	if err != nil {
		return err
	}
	samples, err := s.trafficEvents(ctx, r, service)
	if err != nil {
		return err
	}
	sw := newStreamWriter(w, "text/event-stream", s.writeTO)
	defer sw.close()
	if err := sw.start(); err != nil {
		return nil // client gone
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for {
		var msg []byte
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				return nil
			}
			data, err := json.Marshal(ev)
			if err != nil {
				s.log.Error("encode deploy event", "service", ev.Service, "deployment", ev.Deployment, "err", err)
				continue
			}
			msg = append(append([]byte("data: "), data...), "\n\n"...)
		case smp, ok := <-samples:
			if !ok {
				return nil
			}
			if msg, err = trafficMessage(smp); err != nil {
				s.log.Error("encode traffic sample", "service", smp.Service, "err", err)
				continue
			}
		case <-tick.C:
			msg = []byte(": heartbeat\n\n")
		}
		if _, err := sw.Write(msg); err != nil {
			return nil // client gone or too slow; the stream ends
		}
	}
}
