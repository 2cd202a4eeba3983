package awsfake

import (
	"net/http"
	"time"
)

type faultKey struct{ service, op string }

type fault struct {
	err   *APIError
	n     int // calls left to fail; <0 = every call
	delay time.Duration
}

// FailNext makes the next n calls of an operation of a service (SigV4
// name, e.g. "elasticloadbalancing", and operation, e.g. "ModifyListener";
// op "" matches every operation) fail with e, written in the service's
// protocol. n < 0 fails every call until ClearFaults.
func (s *Server) FailNext(service, op string, n int, e *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[faultKey{service, op}] = &fault{err: e, n: n}
}

// Throttle makes the next n calls of an operation fail with Throttling
// (HTTP 400, code "Throttling"), which the SDK's retryer retries.
func (s *Server) Throttle(service, op string, n int) {
	s.FailNext(service, op, n, Throttling())
}

// Unavailable makes the next n calls fail with a 503 ServiceUnavailable.
func (s *Server) Unavailable(service, op string, n int) {
	s.FailNext(service, op, n, &APIError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Message: "Service is unavailable", Receiver: true})
}

// Delay holds every call of an operation for d before it is served (0
// removes the delay).
func (s *Server) Delay(service, op string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := faultKey{service, op + "\x00delay"}
	if d == 0 {
		delete(s.faults, k)
		return
	}
	s.faults[k] = &fault{delay: d, n: -1}
}

// ClearFaults removes every injected failure and delay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// Calls returns how many calls of an operation the server received
// (including failed ones); op "" counts all of the service's calls.
func (s *Server) Calls(service, op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[faultKey{service, op}]
}

// takeFault counts the call, applies a delay, and returns the failure to
// inject, if any.
func (s *Server) takeFault(service, op string) *APIError {
	s.mu.Lock()
	s.calls[faultKey{service, op}]++
	s.calls[faultKey{service, ""}]++
	var delay time.Duration
	for _, k := range []faultKey{{service, op + "\x00delay"}, {service, "\x00delay"}} {
		if f := s.faults[k]; f != nil {
			delay = f.delay
		}
	}
	var e *APIError
	for _, k := range []faultKey{{service, op}, {service, ""}} {
		f := s.faults[k]
		if f == nil || f.err == nil {
			continue
		}
		e = f.err
		if f.n > 0 {
			f.n--
			if f.n == 0 {
				delete(s.faults, k)
			}
		}
		break
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-s.ctx.Done():
		}
	}
	return e
}
