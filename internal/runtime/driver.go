// Package runtime defines the contract between cutover and whatever starts
// and stops a service's instances (the driver). Its drivers are local
// processes (package runtime/process), containers on one or more Docker
// engines (runtime/docker), Auto Scaling groups (runtime/asg) and static
// addresses (runtime/static).
//
// A Driver serves one service. Its methods are safe for concurrent use.
// Membership changes (instances becoming healthy, being replaced, stopping)
// are reported through the Listener given to the driver's constructor, so
// the router's pools follow the runtime without polling.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// Instance is one running copy of a version in a colour.
type Instance struct {
	// ID is stable for the life of the instance: "<service>-<color>-<n>".
	ID      string      `json:"id"`
	Service string      `json:"service"`
	Color   route.Color `json:"color"`
	Version string      `json:"version"`
	// Addr is host:port the router forwards to.
	Addr string `json:"addr"`
	// PID is the process id (0 for static instances).
	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// PoolRef names a pool: a version in a colour, and how many live
// instances it has where the caller counts them.
type PoolRef struct {
	Color     route.Color `json:"color"`
	Version   string      `json:"version"`
	Instances int         `json:"instances,omitempty"`
	// Env is the release's own environment (see Release); never encoded.
	Env map[string]string `json:"-"`
}

// Release is what a pool runs: a version, and the environment that
// release was deployed with (`cutover deploy --env`), which the runtime
// gives each instance on top of the service's configured environment.
// Env may be nil; it holds values that must not be logged.
type Release struct {
	Version string
	Env     map[string]string
}

// Listener receives pool changes. Pool is called with the full, current list
// of healthy instances of a colour whenever it changes (an empty list when
// the pool stopped). Failed is called when a pool cannot be kept running,
// for example a version that crash-loops; the controller rolls back.
// Calls may come from any goroutine but are serialised per driver.
type Listener interface {
	Pool(color route.Color, version string, instances []Instance)
	Failed(color route.Color, version string, err error)
}

// Driver starts, watches and stops the pools of one service.
type Driver interface {
	// Start launches a pool of the version in the colour and returns once
	// every instance passes its health check, or an error naming the
	// service, colour and version (with the instance's last output for
	// processes). A static pool is the exception: when only some of its
	// addresses pass within the start timeout it serves those and adds the
	// others as they recover (see package static). A colour that already
	// runs the same release (version and env) is adopted as it is; one
	// that runs another is stopped first.
	Start(ctx context.Context, color route.Color, rel Release) ([]Instance, error)
	// Stop stops the colour's pool gracefully. The caller has already
	// taken it out of rotation and drained it.
	Stop(ctx context.Context, color route.Color) error
	// Instances returns the healthy instances of a colour.
	Instances(color route.Color) []Instance
	// Close stops supervising without stopping instances, so that a
	// restarted daemon can adopt them.
	Close() error
}

// LogReader is implemented by drivers that capture instance output.
type LogReader interface {
	// Logs writes the captured output of the colour's instances (all
	// colours when color is nil) to w; with follow it keeps writing new
	// output until ctx is done.
	Logs(ctx context.Context, color *route.Color, follow bool, w io.Writer) error
}

// Registrar is implemented by drivers whose instances are managed
// elsewhere and registered at run time (static pools).
type Registrar interface {
	// Register records addr as an address of version at once; a running
	// pool of the version takes it only once it passes its health check.
	Register(version, addr string) error
	// Deregister forgets addr, taking it out of any pool at once.
	Deregister(version, addr string) error
}

// ErrNotSupported is returned by optional operations a driver lacks.
var ErrNotSupported = errors.New("not supported by this runtime")
