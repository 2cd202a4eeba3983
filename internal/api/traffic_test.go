package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
	"github.com/cutover/cutover/internal/metrics"
)

// trafficBackend is the test backend with a traffic history: fixed
// samples, and a channel the test feeds the stream's samples through.
type trafficBackend struct {
	*apitest.Backend
	samples []metrics.Sample
	live    chan api.TrafficSample
}

func (b *trafficBackend) TrafficHistory(service string) ([]metrics.Sample, error) {
	if _, err := b.Status(service); err != nil {
		return nil, err
	}
	return b.samples, nil
}

func (b *trafficBackend) SubscribeTraffic(ctx context.Context, service string) (<-chan api.TrafficSample, error) {
	return b.live, nil
}

func second(at int64, blueReq, blueErr uint32, blueLatency time.Duration) metrics.Sample {
	var c metrics.Counts
	c.Requests, c.Class[5] = uint64(blueReq), uint64(blueErr)
	s := metrics.Sample{At: at, Weight: [2]float32{90, 10}, Healthy: [2]uint16{2, 1}, Total: [2]uint16{2, 2}}
	s.Colors[0] = metrics.NewSecondCounts(c)
	// Every request in the bucket whose upper bound is blueLatency.
	for i := 0; i < metrics.NumBuckets; i++ {
		if metrics.BucketBound(i) >= blueLatency {
			s.Colors[0].Latency[i] = blueReq
			break
		}
	}
	return s
}

func TestTrafficHistory(t *testing.T) {
	b := &trafficBackend{Backend: apitest.New("web"), samples: []metrics.Sample{
		second(1000, 0, 0, 0),
		second(2000, 200, 10, 20*time.Millisecond),
		second(3000, 100, 0, 5*time.Millisecond),
	}}
	base := serve(t, api.NewServer(b, api.Options{}))
	r := do(t, "GET", base+"/v1/services/web/traffic?since=2000", "", nil)
	if r.status != 200 {
		t.Fatalf("traffic: %d %s", r.status, r.body)
	}
	var got api.TrafficHistory
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Service != "web" || got.IntervalMS != 1000 || len(got.Points) != 2 {
		t.Fatalf("traffic since 2000: %+v", got)
	}
	p := got.Points[0]
	if p.At != 2000 || p.Blue.Requests != 200 || p.Blue.Errors != 10 || p.Blue.ErrorRate == nil || *p.Blue.ErrorRate != 0.05 {
		t.Errorf("second 2000: %+v", p.Blue)
	}
	if p.Blue.P99MS == nil || *p.Blue.P99MS <= 15 || *p.Blue.P99MS > 20 {
		t.Errorf("p99 of a second whose requests took up to 20ms: %v", p.Blue.P99MS)
	}
	if p.Blue.Weight != 90 || p.Green.Weight != 10 || p.Green.Healthy != 1 || p.Green.Total != 2 {
		t.Errorf("split and instances: %+v %+v", p.Blue, p.Green)
	}
	if p.Green.ErrorRate != nil || p.Green.P99MS != nil {
		t.Errorf("a colour without requests has figures: %+v", p.Green)
	}
	if !strings.Contains(r.body, `"error_rate": null`) {
		t.Errorf("a second without requests should say null:\n%s", r.body)
	}
	if r := do(t, "GET", base+"/v1/services/web/traffic?since=yesterday", "", nil); r.status != 400 || r.code != "invalid" {
		t.Errorf("bad since: %d %s", r.status, r.code)
	}
	if r := do(t, "GET", base+"/v1/services/nope/traffic", "", nil); r.status != 404 {
		t.Errorf("unknown service: %d", r.status)
	}
	plain := serve(t, api.NewServer(apitest.New("web"), api.Options{}))
	if r := do(t, "GET", plain+"/v1/services/web/traffic", "", nil); r.status != 501 || r.code != "not_supported" {
		t.Errorf("a backend without history: %d %s", r.status, r.code)
	}
}

// The event stream carries a traffic event per sample when asked to, and
// none otherwise.
func TestTrafficOnEventStream(t *testing.T) {
	b := &trafficBackend{Backend: apitest.New("web"), live: make(chan api.TrafficSample, 4)}
	base := serve(t, api.NewServer(b, api.Options{}))
	resp, err := http.Get(base + "/v1/events?traffic=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b.live <- api.TrafficSample{Service: "web", Sample: second(5000, 40, 2, time.Millisecond)}
	rd := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 2 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v after %q", err, lines)
		}
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, ":") {
			lines = append(lines, line)
		}
	}
	if lines[0] != "event: traffic" || !strings.HasPrefix(lines[1], "data: ") {
		t.Fatalf("stream sent %q", lines)
	}
	var p api.TrafficPoint
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &p); err != nil {
		t.Fatal(err)
	}
	if p.Service != "web" || p.At != 5000 || p.Blue.Requests != 40 || p.Blue.Errors != 2 {
		t.Errorf("traffic event: %+v", p)
	}
}

// The page's files are served to anyone who may reach the API (a browser
// cannot add a token to a navigation); its data and actions still need
// the token, and the page cannot be framed.
func TestDashboardFiles(t *testing.T) {
	const token = "s3cret-token"
	srv := api.NewServer(apitest.New("web"), api.Options{Token: token, Listen: "192.0.2.1:7070"})
	remote := func(method, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		req.RemoteAddr = "192.0.2.7:40000"
		req.Host = "192.0.2.1:7070"
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec
	}
	page := remote("GET", "/")
	if page.Code != 200 || !strings.Contains(page.Body.String(), `<script type="module" src="/ui/app.js">`) {
		t.Fatalf("GET / from another host: %d\n%s", page.Code, page.Body)
	}
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(page.Header().Get("Content-Security-Policy"), want) {
			t.Errorf("Content-Security-Policy %q lacks %q", page.Header().Get("Content-Security-Policy"), want)
		}
	}
	if strings.Contains(page.Body.String(), token) {
		t.Error("the page carries the token")
	}
	for _, f := range []string{"/ui/app.js", "/ui/api.js", "/ui/charts.js", "/ui/format.js", "/ui/app.css"} {
		rec := remote("GET", f)
		if rec.Code != 200 || rec.Body.Len() == 0 {
			t.Errorf("GET %s: %d", f, rec.Code)
		}
		if strings.HasSuffix(f, ".js") && rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q, which a module needs to be JavaScript", f, rec.Header().Get("Content-Type"))
		}
	}
	if rec := remote("GET", "/ui/index.html"); rec.Code != 404 {
		t.Errorf("GET /ui/index.html: %d, want 404 (the page is at /)", rec.Code)
	}
	if rec := remote("GET", "/ui/../v1/services"); rec.Code == 200 {
		t.Errorf("a dotted path reached the API without a token: %d", rec.Code)
	}
	if rec := remote("GET", "/v1/services"); rec.Code != 401 {
		t.Errorf("GET /v1/services from another host without token: %d, want 401", rec.Code)
	}
	if rec := remote("GET", "/v1/events?traffic=1"); rec.Code != 401 {
		t.Errorf("the event stream from another host without token: %d, want 401", rec.Code)
	}
	if rec := remote("POST", "/"); rec.Code != 401 {
		t.Errorf("POST / without token: %d, want 401", rec.Code)
	}
}
