package awsfake

import (
	"fmt"
	"net/http"
)

// APIError is an error as an AWS service returns it: an HTTP status, the
// error code the SDK matches on (Throttling, ValidationError,
// TargetGroupNotFound, NoSuchHostedZone, ...), a message, and whether the
// caller (Sender) or the service (Receiver) is at fault. Handlers return it
// and the service's protocol writes it in that protocol's shape.
type APIError struct {
	Status  int
	Code    string
	Message string
	// Receiver marks a server-side fault (5xx); the default is Sender.
	Receiver bool
	// Messages are extra messages some shapes carry (Route53's
	// InvalidChangeBatch lists one per failed change).
	Messages []string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func (e *APIError) faultName() string {
	if e.Receiver {
		return "Receiver"
	}
	return "Sender"
}

// Errorf builds a client-side APIError with status 400.
func Errorf(code, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf builds a client-side APIError with the given status; AWS uses
// 400 for most "not found" codes on query protocols and 404 on REST ones.
func statusErrorf(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Throttling is the error AWS returns when a caller exceeds its rate; the
// SDK's standard retryer retries it with backoff.
func Throttling() *APIError {
	return Errorf("Throttling", "Rate exceeded")
}

// ValidationError is the awsQuery services' error for a malformed request.
func ValidationError(format string, args ...any) *APIError {
	return Errorf("ValidationError", format, args...)
}

// asAPIError turns any handler error into an APIError, an internal failure
// when it is not one already.
func asAPIError(err error) *APIError {
	if e, ok := err.(*APIError); ok {
		return e
	}
	return &APIError{Status: http.StatusInternalServerError, Code: "InternalFailure", Message: err.Error(), Receiver: true}
}
