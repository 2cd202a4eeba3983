package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover/cutover/internal/health"
	"github.com/cutover/cutover/internal/route"
)

// instance is a real upstream on 127.0.0.1 that names itself in every answer.
type instance struct {
	id   string
	srv  *httptest.Server
	down atomic.Bool // /healthz answers 503 while set
	hits atomic.Int64
}

func (in *instance) addr() string {
	return strings.TrimPrefix(in.srv.Listener.Addr().String(), "http://")
}

func (in *instance) backend() Backend { return Backend{ID: in.id, Addr: in.addr()} }

// newInstance starts an upstream; extra, when not nil, handles paths other
// than /healthz and the default echo.
func newInstance(t testing.TB, id string, extra http.HandlerFunc) *instance {
	t.Helper()
	in := &instance{id: id}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if in.down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		in.hits.Add(1)
		w.Header().Set("X-Instance", id)
		if extra != nil {
			extra(w, r)
			return
		}
		io.WriteString(w, id)
	}))
	t.Cleanup(in.srv.Close)
	return in
}

// testService is the options of the router under test, service "web";
// tests change fields of the copy they get.
func testService() Options {
	return Options{
		Service:           "web",
		DrainTimeout:      2 * time.Second,
		Health:            health.Config{Path: "/healthz", Interval: 50 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1},
		ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second, UpstreamHeaderTimeout: 5 * time.Second,
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CUTOVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// running is a Router serving on real listeners.
type running struct {
	*Router
	url, previewURL string
	stop            func() error
}

func startRouter(t testing.TB, svc Options) *running {
	t.Helper()
	svc.Logger = testLogger(t)
	r, err := New(svc)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pre, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, pub, pre) }()
	scheme := "http"
	if svc.TLSCert != "" {
		scheme = "https"
	}
	rr := &running{Router: r, url: scheme + "://" + pub.Addr().String(), previewURL: "http://" + pre.Addr().String()}
	var stopped bool
	rr.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		err := <-done
		r.Close()
		return err
	}
	t.Cleanup(func() {
		if err := rr.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return rr
}

// client returns a keep-alive client without a cookie jar.
func client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}, Timeout: 20 * time.Second}
}

// get fetches url and returns status, the X-Instance header and the body.
func get(t testing.TB, c *http.Client, url string, hdr ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("X-Instance"), string(b)
}

func backends(ins ...*instance) []Backend {
	var out []Backend
	for _, in := range ins {
		out = append(out, in.backend())
	}
	return out
}

func mustSplit(t testing.TB, r *Router, live route.Color, w float64) {
	t.Helper()
	if err := r.SetSplit(live, w); err != nil {
		t.Fatal(err)
	}
}

func eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = fmt.Sprint

// newTestServer serves h on a real loopback listener and returns its URL.
func newTestServer(t testing.TB, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// scrape returns what a Prometheus scrape (text format) of a registry with
// a Collector of routers reads.
func scrape(t testing.TB, routers ...*Router) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(func() []*Router { return routers }))
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}
