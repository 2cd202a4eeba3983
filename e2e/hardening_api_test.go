package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apiAs sends a request to the daemon's API with the Host header set to
// host and returns the status and body. Streams are cut after the headers.
func (e *env) apiAs(method, path, host, body string, hdr map[string]string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://"+e.api+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if strings.Contains(path, "follow=1") || path == "/v1/events" {
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDaemonRefusesRebindingHost is issue 9's DNS rebinding attack on the
// real daemon: a page at rebind.attacker.example, whose name now resolves
// to 127.0.0.1, sends same-origin requests. Without a token it deployed a
// version; with one it read history and instance logs. Both daemons answer
// 421 on every route, and keep answering their own clients.
func TestDaemonRefusesRebindingHost(t *testing.T) {
	for _, withToken := range []bool{false, true} {
		name := "no token"
		if withToken {
			name = "token"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			var auth map[string]string
			if withToken {
				tok := filepath.Join(e.dir, "token")
				os.WriteFile(tok, []byte("s3cret\n"), 0o600)
				e.editConfig("api:\n  listen: "+e.api+"\n", "api:\n  listen: "+e.api+"\n  token_file: "+tok+"\n")
				auth = map[string]string{"Authorization": "Bearer s3cret"}
			}
			e.start()
			_, port, _ := net.SplitHostPort(e.api)
			evil := "rebind.attacker.example:" + port
			hdr := map[string]string{"Origin": "http://" + evil, "Content-Type": "application/json"}
			for k, v := range auth {
				hdr[k] = v
			}
			for _, rt := range []struct{ method, path, body string }{
				{"POST", "/v1/services/web/deployments", `{"version":"v1"}`},
				{"POST", "/v1/services/web/rollback", ""},
				{"POST", "/v1/reload", ""},
				{"GET", "/v1/services/web", ""},
				{"GET", "/v1/services/web/deployments", ""},
				{"GET", "/v1/services/web/logs", ""},
				{"GET", "/v1/services/web/logs?follow=1", ""},
				{"GET", "/v1/events", ""},
				{"GET", "/metrics", ""},
				{"GET", "/healthz", ""},
			} {
				status, body := e.apiAs(rt.method, rt.path, evil, rt.body, hdr)
				if status != http.StatusMisdirectedRequest {
					t.Errorf("%s %s with Host %s: %d %s, want 421", rt.method, rt.path, evil, status, body)
				} else if body != "" && !strings.Contains(body, "host_not_allowed") {
					t.Errorf("%s %s: 421 without its code: %s", rt.method, rt.path, body)
				}
			}
			if st := e.status(); st.Deployment != nil || st.Live != nil {
				t.Fatalf("a refused request changed the service: %+v", st)
			}
			// The daemon's own names still work: the CLI (127.0.0.1) and localhost.
			if status, body := e.apiAs("GET", "/v1/services/web", "localhost:"+port, "", nil); status != 200 {
				t.Errorf("GET as localhost: %d %s", status, body)
			}
			if withToken {
				auth["Content-Type"] = "application/json"
				if status, body := e.apiAs("POST", "/v1/services/web/deployments", e.api, `{"version":"v1"}`, auth); status != 201 {
					t.Errorf("deploy with the token at the API's own address: %d %s", status, body)
				}
			}
		})
	}
}

// TestValidateAllowedHosts: `cutover validate` accepts api.allowed_hosts
// and refuses an entry that would undo the Host check, at its line.
func TestValidateAllowedHosts(t *testing.T) {
	e := newEnv(t)
	e.editConfig("api:\n  listen: "+e.api+"\n", "api:\n  listen: "+e.api+"\n  allowed_hosts: [cutover.example.com, \"*.ops.example.com:7070\"]\n")
	e.mustCLI(0, "validate", "-c", e.cfg)
	e.editConfig("cutover.example.com,", `"*",`)
	out := e.mustCLI(1, "validate", "-c", e.cfg)
	if !strings.Contains(out, "cutover.yaml:3") || !strings.Contains(out, "api.allowed_hosts[0]") {
		t.Errorf("validate output lacks file:line and key:\n%s", out)
	}
}
