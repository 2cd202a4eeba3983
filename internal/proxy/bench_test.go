package proxy

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"testing"

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
