// Package api serves cutover's control API: HTTP + JSON on versioned paths
// under /v1, plus /healthz and /metrics. It owns the wire format, request
// validation, authentication and the mapping of errors to status codes; the
// work itself is delegated to a Backend, which the daemon implements.
//
// Routes (name is a service name, [a-z0-9-]{1,63}):
//
//	GET    /healthz                               {"status":"ok"}
//	GET    /metrics                               Prometheus text format, or OpenMetrics when Accept asks for it
//	GET    /v1/services                           [deploy.Status, ...]
//	GET    /v1/services/{name}                    deploy.Status
//	POST   /v1/services/{name}/deployments        DeployRequest -> 201 deploy.Deployment
//	GET    /v1/services/{name}/deployments?limit= [deploy.Deployment, ...] newest first
//	GET    /v1/services/{name}/deployments/{id}   deploy.Deployment
//	POST   /v1/services/{name}/promote            deploy.Status after the action
//	POST   /v1/services/{name}/pause              (same)
//	POST   /v1/services/{name}/resume             (same)
//	POST   /v1/services/{name}/abort              (same)
//	POST   /v1/services/{name}/rollback           (same)
//	POST   /v1/services/{name}/down               (same)
//	POST   /v1/services/{name}/up                 (same)
//	GET    /v1/services/{name}/logs?color=&follow=1   text/plain, streamed
//	POST   /v1/services/{name}/instances          InstanceRequest -> 204
//	DELETE /v1/services/{name}/instances          InstanceRequest -> 204
//	GET    /v1/events?service=&traffic=1          text/event-stream of deploy.Event (+ "traffic" events, traffic.go)
//	POST   /v1/reload                             {"status":"reloaded"}
//	POST   /v1/upgrade                            UpgradeRequest -> UpgradeResponse
//	GET    /v1/services/{name}/traffic?since=     TrafficHistory, per second, the last 15 minutes (traffic.go)
//	GET    /  and  /ui/...                        the dashboard's page and files (dashboard.go)
//
// Every error is a JSON body {"error":{"code":"...","message":"..."}} with a
// stable code (see the Code constants).
//
// Before anything else, the Host header must name the API itself (its
// listen address, the IP the request arrived on, localhost or a loopback
// IP, on any port) or match Options.AllowedHosts; any other Host gets 421
// host_not_allowed on every route, which stops DNS rebinding (host.go).
// Request bodies are one JSON object with no unknown fields and no key
// given twice (compared as field names are, without regard to case);
// anything else is 400 invalid, naming the field.
//
// A Server is safe for concurrent use. Streaming responses (logs, events)
// end when the client goes away or the server shuts down.
package api

import (
	"context"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// Backend does the work behind the API. The daemon implements it by
// delegating to each service's controller, runtime and router.
//
// Errors should wrap the sentinels of this package (ErrUnknownService,
// ErrConflict, ErrInvalid, ErrNotSupported, ErrUnavailable) so that clients
// get the right status code; any other error is reported as 500 "internal".
// Methods are called concurrently.
type Backend interface {
	// Services returns the names of the configured services, sorted.
	Services() []string
	// Status returns a service's current state.
	Status(service string) (deploy.Status, error)
	// Deploy starts a deployment of version and returns once it is
	// accepted (recorded), not when it ends. strategy "" means the
	// service's configured strategy; "all-at-once" skips the steps. actor
	// is recorded in the deployment's events ("user" for API calls).
	Deploy(ctx context.Context, service, version, strategy, actor string, env map[string]string) (deploy.Deployment, error)
	// Promote skips the remaining steps and gates: candidate to 100%.
	Promote(ctx context.Context, service string) error
	// Pause holds the running deployment at its current step.
	Pause(ctx context.Context, service string) error
	// Resume continues a paused deployment.
	Resume(ctx context.Context, service string) error
	// Abort ends the running deployment and moves all traffic back.
	Abort(ctx context.Context, service string) error
	// Rollback moves all traffic back to the previous pool now, aborting a
	// running deployment.
	Rollback(ctx context.Context, service string) error
	// Down takes the service out of service: both colours drained and
	// stopped, the state kept. It returns once that is decided; status
	// reports the stop under way (Stopping).
	Down(ctx context.Context, service string) error
	// Up brings a service that is down back: the live pool started and
	// health-gated, then traffic flows. It returns once that is decided;
	// status reports the start under way (Starting).
	Up(ctx context.Context, service string) error
	// History returns past and running deployments, newest first; limit
	// <= 0 means all.
	History(service string, limit int) ([]deploy.Deployment, error)
	// Deployment returns one deployment record by id, without reading the
	// others; found is false when the service has no such deployment.
	Deployment(service, id string) (d deploy.Deployment, found bool, err error)
	// Logs writes instance output of a colour (all colours when color is
	// nil) to w; with follow it keeps writing until ctx is done. It should
	// return errors that prevent serving (unknown service, a runtime
	// without logs) before writing anything, so that they reach the client
	// with their status code.
	Logs(ctx context.Context, service string, color *route.Color, follow bool, w io.Writer) error
	// Register adds a statically managed instance address to a version's pool.
	Register(ctx context.Context, service, version, addr string) error
	// Deregister removes a statically managed instance address.
	Deregister(ctx context.Context, service, version, addr string) error
	// Subscribe returns the live deployment events of a service (of every
	// service when service is ""). The channel is closed when ctx is done.
	// The backend must never block on a slow subscriber: it drops events
	// for a subscriber whose buffer is full.
	Subscribe(ctx context.Context, service string) (<-chan deploy.Event, error)
	// Gatherer returns what /metrics serves: the routers' and the
	// controllers' series, the Go runtime's and the process's. NewServer
	// asks for it once; the API gathers from it at every scrape.
	Gatherer() prometheus.Gatherer
	// Reload re-reads the configuration; a bad one is refused (an error
	// wrapping ErrInvalid) and the running one kept.
	Reload(ctx context.Context) error
}

// DeployRequest is the body of POST /v1/services/{name}/deployments.
type DeployRequest struct {
	// Version is required.
	Version string `json:"version"`
	// Strategy is optional: "" uses the service's configured strategy.
	Strategy string `json:"strategy,omitempty"`
	// Env is the release's own environment, optional: its instances get
	// it over the service's configured env; history keeps only hashes.
	Env map[string]string `json:"env,omitempty"`
	// AllowDrift deploys even when the drift check finds the colours'
	// settings differ (runtime asg; see WithAllowDrift).
	AllowDrift bool `json:"allow_drift,omitempty"`
}

// InstanceRequest is the body of POST and DELETE /v1/services/{name}/instances.
type InstanceRequest struct {
	Version string `json:"version"`
	// Addr is host:port of the instance.
	Addr string `json:"addr"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries a stable machine-readable code and a human message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ActorUser is the actor recorded for changes requested through the API.
const ActorUser = "user"
