package deploy

import "errors"

// Sentinel errors of the controller's commands; the API maps them to
// status codes with errors.Is. Returned errors wrap them with the service,
// the deployment and what stood in the way.
var (
	// ErrBusy: another deployment is under way, or the running one is in a
	// phase that does not allow the command (409). The message names the
	// running deployment's id, version and phase.
	ErrBusy = errors.New("a deployment is in progress")
	// ErrNoDeployment: there is no deployment to promote, pause, resume or
	// abort (409).
	ErrNoDeployment = errors.New("no deployment in progress")
	// ErrNoPrevious: rollback found no warm previous pool to return to (409).
	ErrNoPrevious = errors.New("no previous pool to roll back to")
	// ErrInvalid: the request itself is wrong: a bad version string or an
	// unknown strategy (400).
	ErrInvalid = errors.New("invalid request")
)
