package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover/cutover/internal/route"
)

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
}

func runLoad(b *testing.B, c *http.Client, url string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkRouter measures the router end to end over real loopback
// connections at a 90/10 split, with a client that returns no cookie.
func BenchmarkRouter(b *testing.B) {
	blue, green := newInstance(b, "web-blue-1", nil), newInstance(b, "web-green-1", nil)
	r := startRouter(b, testService())
	r.SetPool(route.Blue, "v1", backends(blue))
	r.SetPool(route.Green, "v2", backends(green))
	mustSplit(b, r.Router, route.Blue, 10)
	b.SetParallelism(16)
	runLoad(b, benchClient(), r.url+"/")
}

// BenchmarkPlainReverseProxy is the floor: httputil.ReverseProxy with a
// transport tuned the same way, to one instance.
func BenchmarkPlainReverseProxy(b *testing.B) {
	blue := newInstance(b, "web-blue-1", nil)
	u, _ := url.Parse(blue.srv.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	srv := newTestServer(b, rp)
	b.SetParallelism(16)
	runLoad(b, benchClient(), srv+"/")
}

// BenchmarkRouterHandler measures the handler alone (no client-side
// socket), which is where the router's own allocations show.
func BenchmarkRouterHandler(b *testing.B) {
	blue, green := newInstance(b, "web-blue-1", nil), newInstance(b, "web-green-1", nil)
	r, err := New(testService())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	r.SetPool(route.Blue, "v1", backends(blue))
	r.SetPool(route.Green, "v2", backends(green))
	mustSplit(b, r, route.Blue, 10)
	h := r.Handler()
	req, _ := http.NewRequest(http.MethodGet, "http://web.example/", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	req.Header.Set("Cookie", "cutover_web=abc")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(c int)           { d.code = c }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// scrapeRouters is two services' routers with a pool in each colour.
func scrapeRouters(b *testing.B) []*Router {
	var routers []*Router
	for _, name := range []string{"web", "api"} {
		opts := testService()
		opts.Service = name
		opts.Health.Interval = time.Hour
		r, err := New(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(r.Close)
		r.SetPool(route.Blue, "v1", backends(newInstance(b, name+"-blue-1", nil)))
		r.SetPool(route.Green, "v2", backends(newInstance(b, name+"-green-1", nil)))
		mustSplit(b, r, route.Blue, 10)
		routers = append(routers, r)
	}
	return routers
}

// BenchmarkScrape measures one /metrics answer in the text format for two
// services: the routers' series alone, and with the Go runtime's and the
// process's beside them, as the daemon serves them.
func BenchmarkScrape(b *testing.B) {
	routers := scrapeRouters(b)
	for _, tc := range []struct {
		name  string
		extra []prometheus.Collector
	}{
		{"routers", nil},
		{"daemon", []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(NewCollector(func() []*Router { return routers }))
			reg.MustRegister(tc.extra...)
			h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("scrape: %d", w.Code)
				}
			}
		})
	}
}
