package proxy

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// A certificate rotated on disk is served from the next handshake on,
// through SetLive and through WatchCertificate, while a client that makes
// a new TLS connection per request never sees a failed handshake.
func TestCertificateRotationFailsNoHandshake(t *testing.T) {
	in := newInstance(t, "web-blue-1", nil)
	cert, key := writeCert(t)
	svc := testService()
	svc.TLSCert, svc.TLSKey = cert, key
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	ctx := t.Context()
	go r.WatchCertificate(ctx, 20*time.Millisecond)

	var (
		mu      sync.Mutex
		serials = map[string]int{}
		failed  atomic.Int64
		lastErr atomic.Value
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
					TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
				resp, err := c.Get(r.url + "/")
				if err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				serials[resp.TLS.PeerCertificates[0].SerialNumber.String()]++
				mu.Unlock()
			}
		})
	}
	served := func(serial string) int { mu.Lock(); defer mu.Unlock(); return serials[serial] }
	waitServed := func(serial string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for served(serial) < 20 {
			if time.Now().After(deadline) {
				t.Fatalf("certificate %s was not served within 5s: %v", serial, serials)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitServed("1")
	rotate := func(serial int64) {
		c2, k2 := writeCertSerial(t, serial)
		for _, m := range [][2]string{{k2, key}, {c2, cert}} {
			if err := os.Rename(m[0], m[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	rotate(2) // picked up by the watcher
	waitServed("2")
	rotate(3) // picked up by SetLive (a reload)
	if err := r.SetLive(svc.live()); err != nil {
		t.Fatal(err)
	}
	waitServed("3")
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the rotations (last: %v)", n, lastErr.Load())
	}
	// A pair that does not load is refused, and the last good one served.
	os.WriteFile(key, []byte("not a key"), 0o600)
	if err := r.SetLive(svc.live()); err == nil {
		t.Error("SetLive took a key file that is not a key")
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}).Get(r.url + "/")
	if err != nil {
		t.Fatalf("after a bad certificate, the last good one should be served: %v", err)
	}
	resp.Body.Close()
	if s := resp.TLS.PeerCertificates[0].SerialNumber.String(); s != "3" {
		t.Errorf("serial %s served after a bad rotation, want the last good 3", s)
	}
}

// SetLive changes the fallback page for the next request and the trusted
// proxies for the next X-Forwarded-For; one that cannot be read changes
// nothing.
func TestSetLiveFallbackAndTrustedProxies(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "maint.html")
	os.WriteFile(page, []byte("first"), 0o600)
	svc := testService()
	svc.FallbackPage = page
	r := startRouter(t, svc)
	body := func() string {
		t.Helper()
		code, _, b := get(t, client(), r.url+"/")
		if code != 503 {
			t.Fatalf("no pool: got %d, want the fallback 503", code)
		}
		return b
	}
	if b := body(); b != "first" {
		t.Fatalf("fallback %q", b)
	}
	next := filepath.Join(dir, "next.html")
	os.WriteFile(next, []byte("second"), 0o600)
	l := svc.live()
	l.FallbackPage = next
	l.TrustedProxies = []string{"127.0.0.1"}
	if err := r.SetLive(l); err != nil {
		t.Fatal(err)
	}
	if b := body(); b != "second" {
		t.Errorf("fallback after SetLive %q, want second", b)
	}
	if !r.isTrusted("127.0.0.1:5000") {
		t.Error("127.0.0.1 is not trusted after SetLive named it")
	}
	l.FallbackPage = filepath.Join(dir, "missing.html")
	l.TrustedProxies = nil
	if err := r.SetLive(l); err == nil {
		t.Error("SetLive took a fallback page that does not exist")
	}
	if b := body(); b != "second" || !r.isTrusted("127.0.0.1:5000") {
		t.Errorf("a refused SetLive changed the router: fallback %q", b)
	}
}

// SetLive with new health settings restarts the members' checks with
// them: an instance failing the old path is healthy again on the new one,
// and the new drain timeout bounds the next drain.
func TestSetLiveHealthAndDrainTimeout(t *testing.T) {
	in := newInstance(t, "web-blue-1", nil)
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	in.down.Store(true) // /healthz answers 503
	waitHealthy := func(want int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			if h, _ := r.Healthy(route.Blue); h == want {
				return
			}
			if time.Now().After(deadline) {
				h, _ := r.Healthy(route.Blue)
				t.Fatalf("%d healthy instances, want %d", h, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitHealthy(0)
	l := testService().live()
	l.Health.Path = "/ready" // the test instance answers 200 there
	l.DrainTimeout = 300 * time.Millisecond
	if err := r.SetLive(l); err != nil {
		t.Fatal(err)
	}
	waitHealthy(1)
	if got := r.drainTimeout(); got != 300*time.Millisecond {
		t.Errorf("drain timeout %s after SetLive, want 300ms", got)
	}
}
