package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/deploy"
)

// chartedInstance is a static instance for the sampler's test: /err
// answers 500, /slow answers after 60 ms, anything else at once; hits
// counts what it served apart from health checks.
func chartedInstance(t *testing.T, version string) *instance {
	t.Helper()
	in := &instance{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		in.hits.Add(1)
		w.Header().Set("X-Version", version)
		switch r.URL.Path {
		case "/err":
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
		case "/slow":
			time.Sleep(60 * time.Millisecond)
			io.WriteString(w, version)
		default:
			io.WriteString(w, version)
		}
	}))
	t.Cleanup(srv.Close)
	in.addr = srv.Listener.Addr().String()
	return in
}

// The daemon's sampler, through its API: one sample a second per service
// with each colour's requests, errors and latency of that second, the
// split and the instances at its end; its seconds add up to exactly what
// each colour's instances served through the public router; a stream that
// asked for traffic gets each new second.
func TestTrafficSampler(t *testing.T) {
	v1, v2 := chartedInstance(t, "v1"), chartedInstance(t, "v2")
	f := newFixture(t, spec{Runtime: staticRuntime(map[string]*instance{"v1": v1, "v2": v2}), Steps: "        - {weight: 50, pause: 1h}\n"})
	r := f.start(daemon.Options{})
	began := time.Now()
	st := r.deployLive("v1", "")
	live := st.Live.Color.String()
	cand := map[string]string{"blue": "green", "green": "blue"}[live]

	c := &http.Client{Timeout: 5 * time.Second}
	send := func(path string, n int) {
		t.Helper()
		for range n {
			resp, err := c.Get("http://" + f.spec.Listen + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	history := func() []api.TrafficPoint {
		t.Helper()
		resp, err := http.Get(r.url + "/v1/services/web/traffic")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h api.TrafficHistory
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET traffic: %s %v", resp.Status, err)
		}
		return h.Points
	}
	color := func(p api.TrafficPoint, c string) api.ColorSecond {
		if c == "blue" {
			return p.Blue
		}
		return p.Green
	}
	// waitSampled waits until the sampler has taken two seconds after now,
	// so that everything sent before is in the ring.
	waitSampled := func() []api.TrafficPoint {
		t.Helper()
		after := time.Now().UnixMilli()
		deadline := time.Now().Add(10 * time.Second)
		for {
			pts := history()
			n := 0
			for _, p := range pts {
				if p.At > after {
					n++
				}
			}
			if n >= 2 {
				return pts
			}
			if time.Now().After(deadline) {
				t.Fatalf("no two samples in 10s after %d: %+v", after, pts)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A stream that asks for traffic gets the seconds as they are taken.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.url+"/v1/events?service=web&traffic=1", nil)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	streamed := make(chan api.TrafficPoint, 64)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		traffic := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "event: traffic":
				traffic = true
			case traffic && strings.HasPrefix(line, "data: "):
				var p api.TrafficPoint
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &p) == nil {
					select {
					case streamed <- p:
					default:
					}
				}
				traffic = false
			}
		}
	}()

	// 1. v1 alone: 30 fast requests, 10 failing ones and 10 slow ones.
	send("/", 30)
	send("/err", 10)
	send("/slow", 10)
	pts := waitSampled()
	var liveSum, liveErr uint64
	var slowest float64
	for _, p := range pts {
		lc, cc := color(p, live), color(p, cand)
		if cc.Requests != 0 {
			t.Errorf("before any deployment of v2, second %d has %d requests on %s", p.At, cc.Requests, cand)
		}
		if lc.Requests > 0 {
			if lc.Weight != 100 || cc.Weight != 0 || cc.Total != 0 || lc.Healthy != 1 || lc.Total != 1 {
				t.Errorf("second %d: %s at %v%% with %d/%d healthy, %s at %v%% with %d instances; want 100%% with 1/1 and none", p.At, live, lc.Weight, lc.Healthy, lc.Total, cand, cc.Weight, cc.Total)
			}
			if lc.ErrorRate == nil || lc.P99MS == nil {
				t.Fatalf("second %d has requests but no error rate or p99: %+v", p.At, lc)
			}
			if want := float64(lc.Errors) / float64(lc.Requests); *lc.ErrorRate != want {
				t.Errorf("second %d: error rate %v, want %v", p.At, *lc.ErrorRate, want)
			}
			slowest = max(slowest, *lc.P99MS)
		} else if lc.ErrorRate != nil || lc.P99MS != nil {
			t.Errorf("second %d has no requests but an error rate or a p99: %+v", p.At, lc)
		}
		liveSum += uint64(lc.Requests)
		liveErr += uint64(lc.Errors)
	}
	if hits := uint64(v1.hits.Load()); liveSum != hits || hits != 50 || liveErr != 10 {
		t.Errorf("the %s seconds count %d requests and %d errors; v1 served %d (50 sent, 10 of them failing)", live, liveSum, liveErr, hits)
	}
	if slowest < 60 {
		t.Errorf("the slowest second's p99 is %.1f ms; 10 requests took 60 ms or more", slowest)
	}

	// One a second, from the start, idle seconds included.
	for i := 1; i < len(pts); i++ {
		if d := pts[i].At - pts[i-1].At; d < 500 || d > 3000 {
			t.Errorf("samples %d and %d are %d ms apart, want about 1000", i-1, i, d)
		}
	}
	elapsed := time.Since(began).Seconds()
	if n := float64(len(pts)); n < elapsed-3 || n > elapsed+1 {
		t.Errorf("%d samples in %.1fs of the daemon's life", len(pts), elapsed)
	}

	// 2. v2 takes half: both colours in the same seconds, 50/50, each
	// counted exactly as its instance served.
	r.deploy("v2", "")
	r.waitFor("v2 at 50%", 20*time.Second, func(st deploy.Status) bool { return st.Weights[cand] == 50 })
	send("/", 200)
	pts = waitSampled()
	sums := map[string]uint64{}
	split := false
	for _, p := range pts {
		sums[live] += uint64(color(p, live).Requests)
		sums[cand] += uint64(color(p, cand).Requests)
		if color(p, live).Weight == 50 && color(p, cand).Weight == 50 && color(p, cand).Requests > 0 && color(p, live).Requests > 0 && color(p, cand).Total == 1 {
			split = true
		}
	}
	if sums[live] != uint64(v1.hits.Load()) || sums[cand] != uint64(v2.hits.Load()) || sums[live]+sums[cand] != 250 {
		t.Errorf("the seconds count %s %d and %s %d requests; v1 served %d and v2 %d (250 sent)", live, sums[live], cand, sums[cand], v1.hits.Load(), v2.hits.Load())
	}
	if !split {
		t.Errorf("no second shows the 50/50 split with traffic on both colours: %+v", pts[len(pts)-5:])
	}

	// The stream delivered seconds of this service as they were taken.
	select {
	case p := <-streamed:
		if p.Service != "web" || p.At < began.UnixMilli() {
			t.Errorf("streamed second %+v", p)
		}
	case <-time.After(5 * time.Second):
		t.Error("no traffic event on the stream within 5s")
	}
	t.Logf("%d samples in %.1fs; %s %d, %s %d requests", len(pts), time.Since(began).Seconds(), live, sums[live], cand, sums[cand])
}
