package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// Sentinel errors a Backend wraps (with %w, possibly alongside its own
// sentinels) to choose the status code of a failed call.
var (
	// ErrUnknownService: no service of that name is configured (404).
	ErrUnknownService = errors.New("unknown service")
	// ErrConflict: the request clashes with the current state, such as a
	// deployment already running or none to promote (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed or names something that does
	// not exist, such as an unknown strategy or a bad config on reload (400).
	ErrInvalid = errors.New("invalid request")
	// ErrNotSupported: the service's runtime or router cannot do this, such
	// as registering instances of a process runtime (501). The daemon
	// wraps runtime.ErrNotSupported with it.
	ErrNotSupported = errors.New("not supported")
	// ErrUnavailable: the daemon cannot serve the request now, for example
	// while it shuts down (503).
	ErrUnavailable = errors.New("unavailable")
)

// The stable error codes of the API's error bodies.
const (
	CodeInvalid        = "invalid"
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeUnknownService = "unknown_service"
	CodeMethod         = "method_not_allowed"
	CodeConflict       = "conflict"
	CodeTooLarge       = "too_large"
	CodeMediaType      = "unsupported_media_type"
	CodeInternal       = "internal"
	CodeNotSupported   = "not_supported"
	CodeUnavailable    = "unavailable"
	CodeTimeout        = "timeout"
	// CodeHostNotAllowed answers a request whose Host header is not one of
	// the API's own addresses or api.allowed_hosts (421).
	CodeHostNotAllowed = "host_not_allowed"
)

// httpError is an error that carries its own status and code; handlers
// return it for problems they detect themselves (bad JSON, missing token).
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, msg string) error {
	return &httpError{status: status, code: code, msg: msg}
}

// classify maps an error to its HTTP status and stable code. It is the one
// place where errors become status codes.
func classify(err error) (int, string) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.status, he.code
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, ErrUnknownService):
		return http.StatusNotFound, CodeUnknownService
	case errors.Is(err, ErrConflict):
		return http.StatusConflict, CodeConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, CodeInvalid
	case errors.Is(err, ErrNotSupported):
		return http.StatusNotImplemented, CodeNotSupported
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, CodeUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, CodeTimeout
	}
	return http.StatusInternalServerError, CodeInternal
}

// writeError answers a request with err as a JSON error body. Server-side
// failures (5xx) are logged; client mistakes are not, so that hostile input
// cannot flood the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	if status >= 500 {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: err.Error()}})
}

// writeJSON writes v as the JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client is gone if this fails; nothing left to tell it
}
