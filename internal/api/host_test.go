package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
)

// hostRequest sends a request to base with the Host header set to host
// and returns the status and, for an error, its code and message. Streams
// are cut after the headers.
func hostRequest(t *testing.T, method, base, path, host string, hdr map[string]string) (status int, code, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body := ""
	if method == "POST" && strings.HasSuffix(path, "/deployments") {
		body = `{"version":"v2"}`
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %q): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 400 {
		return resp.StatusCode, "", ""
	}
	b, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		t.Fatalf("%s %s (Host %q): %d with a body that is not a JSON error: %q", method, path, host, resp.StatusCode, b)
	}
	return resp.StatusCode, eb.Error.Code, eb.Error.Message
}

// everyRoute lists one request of each route the server has, and a path it
// does not have, with the token a token-configured server wants for it.
var everyRoute = []struct{ method, path string }{
	{"GET", "/healthz"},
	{"GET", "/metrics"},
	{"GET", "/v1/services"},
	{"GET", "/v1/services/web"},
	{"POST", "/v1/services/web/deployments"},
	{"GET", "/v1/services/web/deployments"},
	{"GET", "/v1/services/web/deployments/d1"},
	{"POST", "/v1/services/web/promote"},
	{"POST", "/v1/services/web/pause"},
	{"POST", "/v1/services/web/resume"},
	{"POST", "/v1/services/web/abort"},
	{"POST", "/v1/services/web/rollback"},
	{"GET", "/v1/services/web/logs"},
	{"GET", "/v1/services/web/logs?follow=1"},
	{"POST", "/v1/services/web/instances"},
	{"DELETE", "/v1/services/web/instances"},
	{"GET", "/v1/events"},
	{"POST", "/v1/reload"},
	{"GET", "/v2/nothing"},
	{"DELETE", "/v1/services/web/promote"},
}

// TestRebindingHostRefused is the DNS rebinding attack of issue 9: a web
// page at rebind.attacker.example whose name now resolves to 127.0.0.1
// sends requests with its own Host (and Origin, so cross-origin protection
// sees a same-origin request). Every route, the event stream and /metrics
// included, answers 421 without reaching the backend, on a server with and
// without a token, even with the right token.
func TestRebindingHostRefused(t *testing.T) {
	const token = "s3cret-token"
	for _, tc := range []struct {
		name string
		opts api.Options
		hdr  map[string]string
	}{
		{"no token", api.Options{}, nil},
		{"token, loopback reads", api.Options{Token: token}, nil},
		{"token sent", api.Options{Token: token}, map[string]string{"Authorization": "Bearer " + token}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := apitest.New("web")
			b.SetLogs("web", "secret instance output\n")
			base := serve(t, api.NewServer(b, tc.opts))
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
			evil := "rebind.attacker.example:" + port
			hdr := map[string]string{"Origin": "http://" + evil, "Sec-Fetch-Site": "same-origin"}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			for _, rt := range everyRoute {
				status, code, msg := hostRequest(t, rt.method, base, rt.path, evil, hdr)
				if status != http.StatusMisdirectedRequest || code != "host_not_allowed" {
					t.Errorf("%s %s with Host %s: %d %q, want 421 host_not_allowed", rt.method, rt.path, evil, status, code)
					continue
				}
				if !strings.Contains(msg, evil) || !strings.Contains(msg, "api.allowed_hosts") {
					t.Errorf("%s %s: message %q does not name the Host and api.allowed_hosts", rt.method, rt.path, msg)
				}
			}
			if calls := b.Calls(); len(calls) != 0 {
				t.Errorf("requests with a foreign Host reached the backend: %v", calls)
			}
		})
	}
}

// TestHostsAnswered lists the Host values the API answers to and near
// misses it refuses, on a server without and with api.allowed_hosts.
func TestHostsAnswered(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          api.Options
		allow, refuse []string
	}{
		{
			name: "defaults",
			allow: []string{"127.0.0.1:P", "localhost:P", "LocalHost.:P", "localhost", "web.localhost:9",
				"127.9.9.9:1", "[::1]:P", "[::ffff:127.0.0.1]:P"},
			refuse: []string{"rebind.attacker.example:P", "localhost.attacker.example:P", "127.0.0.1.attacker.example:P",
				"192.0.2.77:P", "[fd00::77]:P", "cutover.internal:P"},
		},
		{
			name: "allowed hosts and a listen name",
			opts: api.Options{Listen: "api-host.lan:7070",
				AllowedHosts: []string{"cutover.internal", "ci.example:7443", "*.ops.example", "10.9.8.7", "[fd00::9]:7070"}},
			allow: []string{"cutover.internal:P", "CUTOVER.Internal.", "ci.example:7443", "x.ops.example:P", "a.b.ops.example",
				"10.9.8.7:1", "[fd00::9]:7070", "api-host.lan:1234", "localhost:P"},
			refuse: []string{"ci.example:7070", "ci.example", "ops.example:P", "evilops.example", "x.cutover.internal",
				"cutover.internal.attacker.example:P", "[fd00::9]:7071", "10.9.8.77", "rebind.attacker.example:P"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := apitest.New("web")
			base := serve(t, api.NewServer(b, tc.opts))
			_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
			for _, h := range tc.allow {
				h = strings.ReplaceAll(h, ":P", ":"+port)
				if status, code, msg := hostRequest(t, "GET", base, "/v1/services/web", h, nil); status != 200 {
					t.Errorf("Host %q: %d %s %s, want 200", h, status, code, msg)
				}
			}
			for _, h := range tc.refuse {
				h = strings.ReplaceAll(h, ":P", ":"+port)
				if status, code, _ := hostRequest(t, "GET", base, "/v1/services/web", h, nil); status != 421 || code != "host_not_allowed" {
					t.Errorf("Host %q: %d %s, want 421 host_not_allowed", h, status, code)
				}
			}
			// HTTP/1.0 needs no Host, and browsers always send one.
			if got := rawStatusLine(t, strings.TrimPrefix(base, "http://"), "GET /v1/services/web HTTP/1.0\r\n\r\n"); !strings.Contains(got, " 200 ") {
				t.Errorf("HTTP/1.0 request without Host: %q, want 200", got)
			}
		})
	}
}

// rawStatusLine writes req on a new connection to addr and returns the
// status line of the answer.
func rawStatusLine(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read answer to %q: %v", req, err)
	}
	return line
}

// TestOwnAddressAnswered: an API listening on a non-loopback address (with
// a token, as it must) answers requests that name it by its IP, whether it
// listens on that IP or on every interface, and still refuses other names.
func TestOwnAddressAnswered(t *testing.T) {
	ip := nonLoopbackIPv4(t)
	const token = "tok"
	auth := map[string]string{"Authorization": "Bearer " + token}
	for _, listen := range []string{ip + ":0", "0.0.0.0:0"} {
		t.Run(listen, func(t *testing.T) {
			b := apitest.New("web")
			s := api.NewServer(b, api.Options{Token: token, Listen: listen})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx, ln) }()
			t.Cleanup(func() { cancel(); <-done })
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			base := "http://" + net.JoinHostPort(ip, port)
			for _, rt := range []struct{ method, path string }{
				{"GET", "/v1/services/web"}, {"GET", "/metrics"}, {"POST", "/v1/services/web/promote"},
			} {
				if status, code, msg := hostRequest(t, rt.method, base, rt.path, net.JoinHostPort(ip, port), auth); status != 200 {
					t.Errorf("%s %s at its own address: %d %s %s", rt.method, rt.path, status, code, msg)
				}
			}
			if status, _, _ := hostRequest(t, "GET", base, "/v1/services/web", "rebind.attacker.example:"+port, auth); status != 421 {
				t.Errorf("foreign Host at %s: %d, want 421", base, status)
			}
			if listen == "0.0.0.0:0" {
				lo := "http://127.0.0.1:" + port
				if status, _, _ := hostRequest(t, "GET", lo, "/v1/services/web", "127.0.0.1:"+port, nil); status != 200 {
					t.Errorf("loopback read of a wildcard listener: %d", status)
				}
			}
		})
	}
}

// nonLoopbackIPv4 returns an IPv4 address of this machine that is not
// loopback, or skips the test.
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address to listen on")
	return ""
}
