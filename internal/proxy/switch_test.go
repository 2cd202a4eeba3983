package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

func TestSplitFlipUnderLoadLosesNoRequest(t *testing.T) {
	blue, green := newInstance(t, "web-blue-1", nil), newInstance(t, "web-green-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	r.SetPool(route.Green, "v2", backends(green))
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32, DisableCompression: true}}
	var ok, failed atomic.Int64
	seen := [2]atomic.Int64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 100000 {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(r.url + "/")
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				if resp.Header.Get("X-Instance") == "web-green-1" {
					seen[route.Green].Add(1)
				} else {
					seen[route.Blue].Add(1)
				}
			}
		})
	}
	for i := range 200 {
		live := route.Colors[i%2]
		mustSplit(t, r.Router, live, 0)
		// After the swap, a fresh request lands on the new live colour.
		if _, id, _ := get(t, c, r.url+"/"); !strings.Contains(id, live.String()) {
			t.Fatalf("flip %d: request after the swap to %s reached %s", i, live, id)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during 200 flips", failed.Load(), ok.Load()+failed.Load())
	}
	if seen[0].Load() == 0 || seen[1].Load() == 0 || ok.Load() < 1000 {
		t.Fatalf("load too thin to prove anything: %d ok, blue %d green %d", ok.Load(), seen[0].Load(), seen[1].Load())
	}
	t.Logf("%d requests, 200 flips, 0 failed", ok.Load())
}

func TestHealthWatcherMovesTrafficAway(t *testing.T) {
	b1, b2 := newInstance(t, "web-blue-1", nil), newInstance(t, "web-blue-2", nil)
	green := newInstance(t, "web-green-1", nil)
	svc := testService()
	svc.Health.UnhealthyThreshold, svc.Health.HealthyThreshold = 2, 2
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(b1, b2))
	r.SetPool(route.Green, "v2", backends(green))
	c := client()
	b1.down.Store(true)
	eventually(t, "one blue instance unhealthy", 3*time.Second, func() bool { h, n := r.Healthy(route.Blue); return h == 1 && n == 2 })
	for range 50 {
		if _, id, _ := get(t, c, r.url+"/"); id != "web-blue-2" {
			t.Fatalf("routed to %s with web-blue-1 unhealthy", id)
		}
	}
	b2.down.Store(true)
	eventually(t, "blue all unhealthy", 3*time.Second, func() bool { h, _ := r.Healthy(route.Blue); return h == 0 })
	for range 20 { // weight 0, but blue is down and green is healthy
		if _, id, _ := get(t, c, r.url+"/"); id != "web-green-1" {
			t.Fatalf("routed to %s with blue down", id)
		}
	}
	b1.down.Store(false)
	eventually(t, "web-blue-1 back", 3*time.Second, func() bool { h, _ := r.Healthy(route.Blue); return h == 1 })
	if _, id, _ := get(t, c, r.url+"/"); id != "web-blue-1" {
		t.Fatalf("routed to %s after web-blue-1 recovered", id)
	}
}

func TestSetPoolReplacesAndDrainsRemoved(t *testing.T) {
	release := make(chan struct{})
	old := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "old")
	})
	repl := newInstance(t, "web-blue-2", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(old))
	c := client()
	done := make(chan string, 1)
	go func() { _, _, body := get(t, c, r.url+"/slow"); done <- body }()
	eventually(t, "slow request in flight", 2*time.Second, func() bool { return old.hits.Load() == 1 })
	r.SetPool(route.Blue, "v1", backends(repl))
	if _, id, _ := get(t, c, r.url+"/"); id != "web-blue-2" {
		t.Fatalf("after replacement routed to %s", id)
	}
	close(release)
	if body := <-done; body != "old" {
		t.Fatalf("request in flight on the removed instance got %q", body)
	}
	if v, bs := r.Pool(route.Blue); v != "v1" || len(bs) != 1 || bs[0].ID != "web-blue-2" {
		t.Fatalf("Pool(blue) = %s %v", v, bs)
	}
	// The same ID at a new address is a new instance; the old one leaves.
	r.SetPool(route.Blue, "v1", []Backend{{ID: "web-blue-2", Addr: old.addr()}})
	if _, id, _ := get(t, c, r.url+"/"); id != "web-blue-1" {
		t.Fatalf("after moving web-blue-2 to the old address routed to %s", id)
	}
	old.down.Store(true)
	eventually(t, "moved instance still health-checked", 3*time.Second, func() bool { h, n := r.Healthy(route.Blue); return h == 0 && n == 1 })
}

func TestServeShutdownIsClean(t *testing.T) {
	in := newInstance(t, "web-blue-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	get(t, client(), r.url+"/")
	start := time.Now()
	if err := r.stop(); err != nil {
		t.Fatalf("Serve returned %v on shutdown", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("idle shutdown took %s", time.Since(start))
	}
	if _, err := client().Get(r.url + "/"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestPrometheusOutput(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	c := client()
	get(t, c, r.url+"/")
	get(t, c, r.url+"/")
	get(t, c, r.url+"/missing")
	out := scrape(t, r.Router)
	for _, want := range []string{
		"# TYPE cutover_requests_total counter",
		`cutover_requests_total{class="2xx",color="blue",service="web"} 2`,
		`cutover_requests_total{class="4xx",color="blue",service="web"} 1`,
		`cutover_requests_total{class="2xx",color="green",service="web"} 0`,
		`cutover_upstream_failures_total{color="blue",service="web"} 0`,
		`cutover_in_flight_requests{color="blue",service="web"} 0`,
		"# TYPE cutover_request_duration_seconds histogram",
		`cutover_request_duration_seconds_bucket{color="blue",service="web",le="30"} 3`,
		`cutover_request_duration_seconds_bucket{color="blue",service="web",le="+Inf"} 3`,
		`cutover_request_duration_seconds_count{color="blue",service="web"} 3`,
		`cutover_healthy_instances{color="blue",service="web"} 1`,
		`cutover_weight_percent{color="blue",service="web"} 100`,
		`cutover_fallback_responses_total{service="web"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and returns
// the cert and key paths.
func writeCert(t *testing.T) (string, string) {
	t.Helper()
	return writeCertSerial(t, 1)
}

// writeCertSerial is writeCert with the certificate's serial number.
func writeCertSerial(t *testing.T, serial int64) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "cutover test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	cert, keyf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, keyf
}

func TestHTTP2OverTLS(t *testing.T) {
	in := newInstance(t, "web-blue-1", nil)
	cert, key := writeCert(t)
	svc := testService()
	svc.TLSCert, svc.TLSKey = cert, key
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	c := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(r.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(b) != "web-blue-1" {
		t.Fatalf("got %s %q, want HTTP/2 answer from blue", resp.Proto, b)
	}
}

func TestH2C(t *testing.T) {
	in := newInstance(t, "web-blue-1", nil)
	svc := testService()
	svc.H2C = true
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &p}}
	resp, err := c.Get(r.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("X-Instance") != "web-blue-1" {
		t.Fatalf("got %s from %q", resp.Proto, resp.Header.Get("X-Instance"))
	}
}

// The router and its health checks speak TLS to instances with the client
// configuration the daemon gives (built from runtime.upstream_tls, CA file
// included; the daemon's tests cover a missing one), and verify the
// instance's certificate against it.
func TestUpstreamTLS(t *testing.T) {
	var probes atomic.Int64
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			probes.Add(1)
		}
		io.WriteString(w, "secure")
	}))
	defer up.Close()
	ca := x509.NewCertPool()
	ca.AddCert(up.Certificate())
	svc := testService()
	svc.UpstreamTLS = &tls.Config{RootCAs: ca, ServerName: "example.com", MinVersion: tls.VersionTLS12}
	// A TLS handshake under -race on a loaded machine can take longer
	// than the usual 1s probe deadline; how fast it is is not checked here.
	svc.Health.Timeout = 10 * time.Second
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", []Backend{{ID: "web-blue-1", Addr: up.Listener.Addr().String()}})
	if code, _, body := get(t, client(), r.url+"/"); code != 200 || body != "secure" {
		t.Fatalf("got %d %q over upstream TLS", code, body)
	}
	// A watcher sends a probe only after it judged the one before, so
	// once the third has arrived the first two passed or failed, and one
	// failure (UnhealthyThreshold 1) would have taken the instance out.
	eventually(t, "three health probes over upstream TLS", 10*time.Second, func() bool { return probes.Load() >= 3 })
	if h, _ := r.Healthy(route.Blue); h != 1 {
		t.Fatal("health checks over upstream TLS fail")
	}

	untrusted := func(unhealthyAfter int) Options {
		o := testService()
		o.UpstreamTLS = &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "example.com", MinVersion: tls.VersionTLS12}
		o.Health.UnhealthyThreshold = unhealthyAfter
		return o
	}
	// The request path must refuse the certificate itself. Its probes fail
	// too, so they may not take the instance out first: that would answer
	// 503 from the fallback without the request reaching the instance.
	r2 := startRouter(t, untrusted(1<<30))
	r2.SetPool(route.Blue, "v1", []Backend{{ID: "web-blue-1", Addr: up.Listener.Addr().String()}})
	if code, _, body := get(t, client(), r2.url+"/"); code != http.StatusBadGateway {
		t.Fatalf("an instance whose certificate the upstream TLS configuration does not trust answered: %d %q, want 502", code, body)
	}
	// And the health checks refuse it as well.
	r3 := startRouter(t, untrusted(1))
	r3.SetPool(route.Blue, "v1", []Backend{{ID: "web-blue-1", Addr: up.Listener.Addr().String()}})
	eventually(t, "an instance with an untrusted certificate checked unhealthy", 10*time.Second, func() bool {
		h, _ := r3.Healthy(route.Blue)
		return h == 0
	})
}

func TestStickinessDisabledAndCustomFallback(t *testing.T) {
	page := filepath.Join(t.TempDir(), "maint.html")
	os.WriteFile(page, []byte("<p>back soon</p>"), 0o600)
	svc := testService()
	svc.StickyCookie = "-"
	svc.FallbackPage = page
	r := startRouter(t, svc)
	resp, err := client().Get(r.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || string(b) != "<p>back soon</p>" || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("got %d %q cookie %q", resp.StatusCode, b, resp.Header.Get("Set-Cookie"))
	}
}
