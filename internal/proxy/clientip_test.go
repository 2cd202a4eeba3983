package proxy

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/route"
)

// An app that reads X-Real-IP or True-Client-IP must see the client's
// claim only when a trusted proxy sent it, on the lean path and on the
// upgrade (ReverseProxy) path alike.
func TestClientAddressHeadersNeedTrust(t *testing.T) {
	echo := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s|%s", r.Header.Get("X-Real-IP"), r.Header.Get("True-Client-IP"), r.Header.Get("X-Client-IP"))
	})
	for _, tc := range []struct {
		name, trusted, want string
	}{
		{"untrusted client is stripped", "10.0.0.0/8", "||"},
		{"trusted proxy is kept", "127.0.0.0/8", "6.6.6.6|7.7.7.7|8.8.8.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := testService()
			svc.TrustedProxies = []string{tc.trusted}
			r := startRouter(t, svc)
			r.SetPool(route.Blue, "v1", backends(echo))
			for _, upgrade := range []bool{false, true} {
				req, _ := http.NewRequest(http.MethodGet, r.url+"/", nil)
				req.Header.Set("X-Real-IP", "6.6.6.6")
				req.Header.Set("True-Client-IP", "7.7.7.7")
				req.Header.Set("X-Client-IP", "8.8.8.8")
				if upgrade { // the instance declines; the answer still shows what it saw
					req.Header.Set("Connection", "Upgrade")
					req.Header.Set("Upgrade", "websocket")
				}
				resp, err := client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != tc.want {
					t.Fatalf("upgrade %v: upstream saw X-Real-IP|True-Client-IP|X-Client-IP = %q, want %q", upgrade, b, tc.want)
				}
			}
		})
	}
}

// An untrusted client can neither forge nor strip what the instance is
// told about it, on each upstream path (the h1 engine, the transport,
// ReverseProxy for upgrades): every
// spelling of the forwarding headers (underscores too, which CGI, WSGI,
// Rack and PHP read as the hyphenated name) and the CDN client-address
// headers are dropped, and naming the forwarding headers in Connection
// (hop-by-hop for that hop only) does not remove the router's own.
func TestUntrustedClientCannotForgeOrStripForwarding(t *testing.T) {
	echo := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		var seen []string
		for k, vv := range r.Header {
			seen = append(seen, k+"="+strings.Join(vv, ","))
		}
		sort.Strings(seen)
		io.WriteString(w, strings.Join(seen, "\n"))
	})
	svc := testService()
	svc.TrustedProxies = []string{"10.0.0.0/8"}
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(echo))
	forged := []string{
		"X_Forwarded_For", "x_forwarded_for", "X-Forwarded-For", "X_Forwarded_Host", "X_Forwarded_Proto",
		"X-Forwarded-Port", "X_Real_IP", "X-Real-IP", "CF-Connecting-IP", "True-Client-IP",
		"Fastly-Client-IP", "X-Client-IP", "X-Cluster-Client-IP", "Forwarded", "X_Client_IP",
	}
	for _, path := range []string{"engine", "transport", "upgrade"} {
		upgrade := path == "upgrade"
		req, _ := http.NewRequest(http.MethodGet, r.url+"/", nil)
		if path == "transport" { // a body of unknown length
			req, _ = http.NewRequest(http.MethodPost, r.url+"/", io.NopCloser(strings.NewReader("body")))
			req.ContentLength = -1
		}
		req.Host = "web.example"
		for _, k := range forged {
			req.Header[k] = []string{"6.6.6.6"}
		}
		req.Header.Set("Connection", "X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-For")
		if upgrade { // the instance declines; the answer still shows what it saw
			req.Header.Set("Connection", "Upgrade, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-For")
			req.Header.Set("Upgrade", "websocket")
		}
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen := "\n" + string(b) + "\n"
		for _, want := range []string{"X-Forwarded-For=127.0.0.1", "X-Forwarded-Host=web.example", "X-Forwarded-Proto=http"} {
			if !strings.Contains(seen, "\n"+want+"\n") {
				t.Errorf("%s: instance did not see %s; it saw:%s", path, want, seen)
			}
		}
		if strings.Contains(seen, "6.6.6.6") {
			t.Errorf("%s: a forged client claim reached the instance:%s", path, seen)
		}
	}
}
