package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
	"github.com/cutover/cutover/internal/deploy"
)

// serve runs s on a fresh 127.0.0.1 port until the test ends and returns
// its base URL.
func serve(t *testing.T, s *api.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

type response struct {
	status int
	header http.Header
	body   string
	code   string // error code, when the body is an error
	msg    string // error message
}

func do(t *testing.T, method, url, body string, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode >= 400 {
		var eb api.ErrorBody
		if err := json.Unmarshal(b, &eb); err != nil {
			t.Fatalf("%s %s: %d with a body that is not a JSON error: %q", method, url, resp.StatusCode, b)
		}
		r.code, r.msg = eb.Error.Code, eb.Error.Message
		if eb.Error.Message == "" {
			t.Errorf("%s %s: error %s without a message", method, url, eb.Error.Code)
		}
	}
	return r
}

func TestRoutes(t *testing.T) {
	b := apitest.New("web", "api")
	b.SetHistory("web", []deploy.Deployment{{ID: "d2", Service: "web", Version: "v2"}, {ID: "d1", Service: "web", Version: "v1"}})
	base := serve(t, api.NewServer(b, api.Options{}))
	busy := deploy.Status{Service: "busy", Phase: deploy.PhaseShifting, Deployment: &deploy.DeploymentRef{ID: "d9"}}
	b.SetStatus(busy)

	json := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code                     string
		bodyHas                  string
	}{
		{"healthz", "GET", "/healthz", "", nil, 200, "", `"ok"`},
		{"metrics", "GET", "/metrics", "", nil, 200, "", "cutover_up 1"},
		{"services", "GET", "/v1/services", "", nil, 200, "", `"service": "web"`},
		{"status", "GET", "/v1/services/web", "", nil, 200, "", `"phase": "idle"`},
		{"status unknown", "GET", "/v1/services/nope", "", nil, 404, "unknown_service", ""},
		{"status bad name", "GET", "/v1/services/..%2F..", "", nil, 404, "unknown_service", ""},
		{"deploy", "POST", "/v1/services/web/deployments", `{"version":"v2","strategy":"all-at-once"}`, json, 201, "", `"version": "v2"`},
		{"deploy no content type", "POST", "/v1/services/web/deployments", `{"version":"v2"}`, nil, 201, "", `"id": "d1"`},
		{"deploy busy", "POST", "/v1/services/busy/deployments", `{"version":"v2"}`, json, 409, "conflict", ""},
		{"deploy unknown service", "POST", "/v1/services/nope/deployments", `{"version":"v2"}`, json, 404, "unknown_service", ""},
		{"deploy unknown field", "POST", "/v1/services/web/deployments", `{"version":"v2","force":true}`, json, 400, "invalid", ""},
		{"deploy two values", "POST", "/v1/services/web/deployments", `{"version":"v2"}{"version":"v3"}`, json, 400, "invalid", ""},
		{"deploy trailing garbage", "POST", "/v1/services/web/deployments", `{"version":"v2"} x`, json, 400, "invalid", ""},
		{"deploy empty body", "POST", "/v1/services/web/deployments", ``, json, 400, "invalid", ""},
		{"deploy no version", "POST", "/v1/services/web/deployments", `{"strategy":"x"}`, json, 400, "invalid", ""},
		{"deploy version too long", "POST", "/v1/services/web/deployments", `{"version":"` + strings.Repeat("v", 129) + `"}`, json, 400, "invalid", "longer than 128"},
		{"deploy version at the limit", "POST", "/v1/services/web/deployments", `{"version":"` + strings.Repeat("v", 128) + `"}`, json, 201, "", ""},
		{"deploy version with space", "POST", "/v1/services/web/deployments", `{"version":"v 2"}`, json, 400, "invalid", ""},
		{"deploy bad strategy", "POST", "/v1/services/web/deployments", `{"version":"v2","strategy":"A B"}`, json, 400, "invalid", ""},
		{"deploy wrong type", "POST", "/v1/services/web/deployments", `{"version":2}`, json, 400, "invalid", ""},
		{"deploy array", "POST", "/v1/services/web/deployments", `["v2"]`, json, 400, "invalid", ""},
		{"deploy form", "POST", "/v1/services/web/deployments", `version=v2`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", ""},
		{"history", "GET", "/v1/services/web/deployments", "", nil, 200, "", `"id": "d2"`},
		{"history limit", "GET", "/v1/services/web/deployments?limit=1", "", nil, 200, "", `"d2"`},
		{"history bad limit", "GET", "/v1/services/web/deployments?limit=-1", "", nil, 400, "invalid", ""},
		{"history empty is array", "GET", "/v1/services/api/deployments", "", nil, 200, "", `[]`},
		{"deployment", "GET", "/v1/services/web/deployments/d1", "", nil, 200, "", `"version": "v1"`},
		{"deployment missing", "GET", "/v1/services/web/deployments/d7", "", nil, 404, "not_found", ""},
		{"promote", "POST", "/v1/services/web/promote", "", nil, 200, "", `"service": "web"`},
		{"pause", "POST", "/v1/services/web/pause", "", nil, 200, "", `"service": "web"`},
		{"resume", "POST", "/v1/services/web/resume", "", nil, 200, "", `"service": "web"`},
		{"abort", "POST", "/v1/services/web/abort", "", nil, 200, "", `"service": "web"`},
		{"rollback", "POST", "/v1/services/web/rollback", "", nil, 200, "", `"service": "web"`},
		{"down", "POST", "/v1/services/web/down", "", nil, 200, "", `"down": true`},
		{"up", "POST", "/v1/services/web/up", "", nil, 200, "", `"down": false`},
		{"down unknown", "POST", "/v1/services/nope/down", "", nil, 404, "unknown_service", ""},
		{"up wrong method", "GET", "/v1/services/web/up", "", nil, 405, "method_not_allowed", ""},
		{"promote unknown", "POST", "/v1/services/nope/promote", "", nil, 404, "unknown_service", ""},
		{"register", "POST", "/v1/services/web/instances", `{"version":"v2","addr":"10.0.0.5:8080"}`, json, 204, "", ""},
		{"deregister", "DELETE", "/v1/services/web/instances", `{"version":"v2","addr":"10.0.0.5:8080"}`, json, 204, "", ""},
		{"register bad addr", "POST", "/v1/services/web/instances", `{"version":"v2","addr":"10.0.0.5"}`, json, 400, "invalid", ""},
		{"register bad port", "POST", "/v1/services/web/instances", `{"version":"v2","addr":"h:99999"}`, json, 400, "invalid", ""},
		{"logs bad color", "GET", "/v1/services/web/logs?color=red", "", nil, 400, "invalid", ""},
		{"logs bad follow", "GET", "/v1/services/web/logs?follow=yes", "", nil, 400, "invalid", ""},
		{"logs unknown", "GET", "/v1/services/nope/logs", "", nil, 404, "unknown_service", ""},
		{"events bad service", "GET", "/v1/events?service=No!", "", nil, 404, "unknown_service", ""},
		{"reload", "POST", "/v1/reload", "", nil, 200, "", "reloaded"},
		{"no such path", "GET", "/v2/nothing", "", nil, 404, "not_found", ""},
		{"wrong method", "DELETE", "/v1/services/web/promote", "", nil, 405, "method_not_allowed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, base+tt.path, tt.body, tt.hdr)
			if r.status != tt.status || r.code != tt.code {
				t.Fatalf("got %d %q, want %d %q; body %s", r.status, r.code, tt.status, tt.code, r.body)
			}
			if !strings.Contains(r.body, tt.bodyHas) {
				t.Errorf("body %s does not contain %s", r.body, tt.bodyHas)
			}
		})
	}
	if got := do(t, "POST", base+"/v1/services/web/promote", "", nil).header.Get("Allow"); got != "" {
		t.Errorf("Allow on a success: %q", got)
	}
	if got := do(t, "DELETE", base+"/v1/services/web/promote", "", nil).header.Get("Allow"); !strings.Contains(got, "POST") {
		t.Errorf("405 Allow = %q, want POST in it", got)
	}
	calls := strings.Join(b.Calls(), "\n")
	for _, want := range []string{"[deploy web v2 all-at-once user]", "[register web v2 10.0.0.5:8080]", "[deregister web v2 10.0.0.5:8080]", "[rollback web]", "[down web]", "[up web]"} {
		if !strings.Contains(calls, want) {
			t.Errorf("backend calls lack %s:\n%s", want, calls)
		}
	}
	if strings.Contains(calls, "force") || strings.Contains(calls, "v 2") {
		t.Errorf("an invalid request reached the backend:\n%s", calls)
	}
}

func TestErrorMapping(t *testing.T) {
	b := apitest.New("web")
	base := serve(t, api.NewServer(b, api.Options{}))
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("promote web: %w", api.ErrConflict), 409, "conflict"},
		{errors.Join(errors.New("deploy: busy"), api.ErrConflict), 409, "conflict"},
		{fmt.Errorf("%w: %w", api.ErrInvalid, errors.New("no strategy canary")), 400, "invalid"},
		{fmt.Errorf("%w %q", api.ErrUnknownService, "web"), 404, "unknown_service"},
		{fmt.Errorf("logs: %w", api.ErrNotSupported), 501, "not_supported"},
		{fmt.Errorf("shutting down: %w", api.ErrUnavailable), 503, "unavailable"},
		{fmt.Errorf("hook: %w", context.DeadlineExceeded), 504, "timeout"},
		{errors.New("disk on fire"), 500, "internal"},
	}
	for _, tt := range tests {
		b.SetError("promote", tt.err)
		r := do(t, "POST", base+"/v1/services/web/promote", "", nil)
		if r.status != tt.status || r.code != tt.code {
			t.Errorf("%v: got %d %s, want %d %s", tt.err, r.status, r.code, tt.status, tt.code)
		}
		if r.msg != tt.err.Error() {
			t.Errorf("%v: message lost: %s", tt.err, r.body)
		}
	}
}

func TestHugeBody(t *testing.T) {
	b := apitest.New("web")
	base := serve(t, api.NewServer(b, api.Options{}))
	huge := `{"version":"` + strings.Repeat("v", 1<<20) + `"}`
	r := do(t, "POST", base+"/v1/services/web/deployments", huge, map[string]string{"Content-Type": "application/json"})
	if r.status != 413 || r.code != "too_large" {
		t.Fatalf("got %d %s, want 413 too_large", r.status, r.code)
	}
	// A body just over the limit but otherwise fine is refused too.
	pad := `{"version":"v2","strategy":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`
	if r := do(t, "POST", base+"/v1/services/web/instances", pad, nil); r.status != 413 {
		t.Fatalf("padded body: got %d, want 413", r.status)
	}
	if len(b.Calls()) != 0 {
		t.Fatalf("backend called: %v", b.Calls())
	}
}

func TestTokenRules(t *testing.T) {
	const token = "s3cret-token"
	b := apitest.New("web")
	// Listen is the address remote clients below reach the API at.
	srv := api.NewServer(b, api.Options{Token: token, Listen: "192.0.2.1:7070"})
	base := serve(t, srv)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	tests := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
	}{
		{"read open on loopback", "GET", "/v1/services/web", nil, 200},
		{"metrics open on loopback", "GET", "/metrics", nil, 200},
		{"mutation without token", "POST", "/v1/services/web/promote", nil, 401},
		{"mutation with wrong token", "POST", "/v1/services/web/promote", bearer("s3cret-tokeN"), 401},
		{"mutation with token prefix", "POST", "/v1/services/web/promote", bearer("s3cret"), 401},
		{"mutation with basic auth", "POST", "/v1/reload", map[string]string{"Authorization": "Basic " + token}, 401},
		{"delete without token", "DELETE", "/v1/services/web/instances", nil, 401},
		{"mutation with token", "POST", "/v1/services/web/promote", bearer(token), 200},
		{"reload with token", "POST", "/v1/reload", bearer(token), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, base+tt.path, "", tt.hdr)
			if r.status != tt.status {
				t.Fatalf("got %d, want %d: %s", r.status, tt.status, r.body)
			}
			if r.status == 401 && (r.code != "unauthorized" || r.header.Get("WWW-Authenticate") == "") {
				t.Errorf("401 without code or challenge: %s %v", r.body, r.header)
			}
			if strings.Contains(r.body, token) {
				t.Errorf("response reveals the token: %s", r.body)
			}
		})
	}
	if got := b.Calls(); len(got) != 2 {
		t.Errorf("backend saw %d mutations, want the 2 authorised ones: %v", len(got), got)
	}

	// Reads from another host need the token; /healthz never does.
	remote := func(path, auth string) int {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "192.0.2.7:40000"
		req.Host = "192.0.2.1:7070"
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	if c := remote("/v1/services/web", ""); c != 401 {
		t.Errorf("remote read without token: %d, want 401", c)
	}
	if c := remote("/v1/services/web", "Bearer "+token); c != 200 {
		t.Errorf("remote read with token: %d, want 200", c)
	}
	if c := remote("/healthz", ""); c != 200 {
		t.Errorf("remote healthz: %d, want 200", c)
	}
}

func TestCrossOriginRefused(t *testing.T) {
	b := apitest.New("web")
	base := serve(t, api.NewServer(b, api.Options{}))
	r := do(t, "POST", base+"/v1/services/web/rollback", "", map[string]string{
		"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if r.status != 403 || r.code != "forbidden" {
		t.Fatalf("cross-site POST: %d %s, want 403 forbidden", r.status, r.code)
	}
	if len(b.Calls()) != 0 {
		t.Fatalf("backend called: %v", b.Calls())
	}
}

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:7070", "", true},
		{"[::1]:7070", "", true},
		{"localhost:7070", "", true},
		{"0.0.0.0:7070", "", false},
		{":7070", "", false},
		{"10.1.2.3:7070", "", false},
		{"example.com:7070", "", false},
		{"0.0.0.0:7070", "t", true},
		{"nonsense", "", false},
	}
	for _, tt := range tests {
		if err := api.CheckListen(tt.addr, tt.token); (err == nil) != tt.ok {
			t.Errorf("CheckListen(%q, %q) = %v, want ok=%v", tt.addr, tt.token, err, tt.ok)
		}
	}
}

func TestEventsStream(t *testing.T) {
	b := apitest.New("web", "api")
	base := serve(t, api.NewServer(b, api.Options{Heartbeat: 50 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events?service=web", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	waitFor(t, func() bool { return b.Subscribers() == 1 })
	b.Emit(deploy.Event{Service: "api", Type: "started", Message: "other service"})
	b.Emit(deploy.Event{Service: "web", Deployment: "d1", Type: "step", Weight: 10, Message: "10%"})

	sc := bufio.NewScanner(resp.Body)
	var heartbeat bool
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ":") {
			heartbeat = true
			continue
		}
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var ev deploy.Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
			t.Fatalf("bad event line %q: %v", line, err)
		}
		if ev.Service != "web" || ev.Weight != 10 || ev.Deployment != "d1" {
			t.Fatalf("got event %+v, want web's step event only", ev)
		}
		break
	}
	// A heartbeat comes while nothing happens.
	for !heartbeat && sc.Scan() {
		heartbeat = strings.HasPrefix(sc.Text(), ": heartbeat")
	}
	if !heartbeat {
		t.Fatalf("no heartbeat: %v", sc.Err())
	}
	cancel()
	waitFor(t, func() bool { return b.Subscribers() == 0 })
}

func TestLogsFollow(t *testing.T) {
	b := apitest.New("web")
	b.SetLogs("web", "first line\n")
	base := serve(t, api.NewServer(b, api.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/services/web/logs?follow=1&color=green", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); line != "[green] first line\n" {
		t.Fatalf("first line %q", line)
	}
	if err := b.FeedLog(ctx, "second line\n"); err != nil {
		t.Fatal(err)
	}
	// Flushed at once: readable while the response is still open.
	if line, _ := rd.ReadString('\n'); line != "second line\n" {
		t.Fatalf("second line %q", line)
	}
}

func TestSlowClientHeaders(t *testing.T) {
	b := apitest.New("web")
	base := serve(t, api.NewServer(b, api.Options{ReadHeaderTimeout: 200 * time.Millisecond}))
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers that never end.
	if _, err := io.WriteString(conn, "GET /v1/services HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n"); err != nil {
		t.Fatal(err)
	}
	// Meanwhile the API keeps serving others.
	if r := do(t, "GET", base+"/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz during a slow client: %d", r.status)
	}
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = io.ReadAll(conn) // the server closes the connection
	if err != nil {
		t.Fatalf("slow client was not disconnected: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("disconnected after %v", d)
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	b := apitest.New("web")
	s := api.NewServer(b, api.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return with an open event stream")
	}
	if _, err := io.ReadAll(resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream ended with %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 3s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
