// Package client is the typed Go client of cutover's control API (package
// api). The CLI, the demo and the tests talk to the daemon only through it.
//
// A Client is safe for concurrent use. Every method takes a context that
// bounds the whole call, including a streamed body.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// Client calls one cutover daemon.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client of the API at baseURL (for example
// "http://127.0.0.1:7070"; a bare host:port gets "http://"). token, when not
// empty, is sent as a bearer token with every request. hc nil uses
// http.DefaultClient; it must not set a Timeout shorter than the streams
// (logs, events) the caller reads: use contexts instead.
func New(baseURL, token string, hc *http.Client) *Client {
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

// Error is an error answer of the API.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's stable error code, such as "unknown_service" or
	// "conflict" (see the api.Code constants).
	Code string
	// Message is the daemon's human-readable explanation.
	Message string
}

// Error returns the daemon's message.
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("cutover API: %d %s", e.Status, e.Code)
	}
	return e.Message
}

// UnreachableError reports that the request could not reach the daemon
// (connection refused, no route, a reset before any answer).
type UnreachableError struct {
	// URL is the API base URL.
	URL string
	Err error
}

// Error names the URL and the network error.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the cutover daemon at %s: %v", e.URL, e.Err)
}

// Unwrap returns the network error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// send performs one request and returns the response when its status is
// 2xx; any other answer becomes an *Error. The caller closes the body.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("request %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return nil, &UnreachableError{URL: c.base, Err: err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb api.ErrorBody
	if err := json.Unmarshal(b, &eb); err == nil && eb.Error.Code != "" {
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: msg}
}

// call performs a request and decodes a JSON answer into out (when not nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

func servicePath(service string, rest ...string) string {
	p := "/v1/services/" + url.PathEscape(service)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// Health returns nil when the daemon answers /healthz.
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Services returns the status of every configured service.
func (c *Client) Services(ctx context.Context) ([]deploy.Status, error) {
	var out []deploy.Status
	err := c.call(ctx, http.MethodGet, "/v1/services", nil, &out)
	return out, err
}

// Status returns one service's status.
func (c *Client) Status(ctx context.Context, service string) (deploy.Status, error) {
	var out deploy.Status
	err := c.call(ctx, http.MethodGet, servicePath(service), nil, &out)
	return out, err
}

// Deploy starts a deployment of version; strategy "" uses the service's
// configured strategy. It returns once the daemon accepted it.
func (c *Client) Deploy(ctx context.Context, service, version, strategy string) (deploy.Deployment, error) {
	return c.DeployRelease(ctx, service, api.DeployRequest{Version: version, Strategy: strategy})
}

// DeployRelease starts a deployment described by req, which may carry
// the release's own environment.
func (c *Client) DeployRelease(ctx context.Context, service string, req api.DeployRequest) (deploy.Deployment, error) {
	var out deploy.Deployment
	err := c.call(ctx, http.MethodPost, servicePath(service, "deployments"), req, &out)
	return out, err
}

// History returns a service's deployments, newest first; limit <= 0 means all.
func (c *Client) History(ctx context.Context, service string, limit int) ([]deploy.Deployment, error) {
	path := servicePath(service, "deployments")
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out []deploy.Deployment
	err := c.call(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// Deployment returns one deployment of a service by id.
func (c *Client) Deployment(ctx context.Context, service, id string) (deploy.Deployment, error) {
	var out deploy.Deployment
	err := c.call(ctx, http.MethodGet, servicePath(service, "deployments", id), nil, &out)
	return out, err
}

// action posts a state change and returns the status after it.
func (c *Client) action(ctx context.Context, service, verb string) (deploy.Status, error) {
	var out deploy.Status
	err := c.call(ctx, http.MethodPost, servicePath(service, verb), nil, &out)
	return out, err
}

// Promote skips the remaining steps and gates and returns the status after.
func (c *Client) Promote(ctx context.Context, service string) (deploy.Status, error) {
	return c.action(ctx, service, "promote")
}

// Pause holds the running deployment and returns the status after.
func (c *Client) Pause(ctx context.Context, service string) (deploy.Status, error) {
	return c.action(ctx, service, "pause")
}

// Resume continues a paused deployment and returns the status after.
func (c *Client) Resume(ctx context.Context, service string) (deploy.Status, error) {
	return c.action(ctx, service, "resume")
}

// Abort ends the running deployment and returns the status after.
func (c *Client) Abort(ctx context.Context, service string) (deploy.Status, error) {
	return c.action(ctx, service, "abort")
}

// Rollback moves all traffic back to the previous pool and returns the
// status after.
func (c *Client) Rollback(ctx context.Context, service string) (deploy.Status, error) {
	return c.action(ctx, service, "rollback")
}

// Down takes the service out of service (both colours drained and
// stopped, state kept) and returns the status after the decision; the
// stop runs on (Status.Stopping).
func (c *Client) Down(ctx context.Context, service string) (deploy.Status, error) {
	return c.action(ctx, service, "down")
}

// Up brings a service that is down back and returns the status after the
// decision; the live pool starts, health-gated (Status.Starting), and
// Status.Down is false once it serves.
func (c *Client) Up(ctx context.Context, service string) (deploy.Status, error) {
	return c.action(ctx, service, "up")
}

// Register adds a statically managed instance to a version's pool.
func (c *Client) Register(ctx context.Context, service, version, addr string) error {
	return c.call(ctx, http.MethodPost, servicePath(service, "instances"),
		api.InstanceRequest{Version: version, Addr: addr}, nil)
}

// Deregister removes a statically managed instance.
func (c *Client) Deregister(ctx context.Context, service, version, addr string) error {
	return c.call(ctx, http.MethodDelete, servicePath(service, "instances"),
		api.InstanceRequest{Version: version, Addr: addr}, nil)
}

// Reload asks the daemon to re-read its configuration; a bad one is
// refused with an *Error whose message lists the problems.
func (c *Client) Reload(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/v1/reload", nil, nil)
}

// Metrics writes the daemon's Prometheus metrics text to w.
func (c *Client) Metrics(ctx context.Context, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("read metrics: %w", err)
	}
	return nil
}

// Logs writes a service's instance output (of one colour when color is
// not nil) to w. With follow it keeps writing until ctx is done, and then
// returns nil.
func (c *Client) Logs(ctx context.Context, service string, color *route.Color, follow bool, w io.Writer) error {
	q := url.Values{}
	if color != nil {
		q.Set("color", color.String())
	}
	if follow {
		q.Set("follow", "1")
	}
	path := servicePath(service, "logs")
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.send(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read logs of %s: %w", service, err)
	}
	return nil
}
