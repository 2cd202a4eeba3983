package proxy

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// A WebSocket session or an event stream that lasts a while must not look
// like a slow request to the p99 check; a plain slow request still must.
func TestStreamLatencyIsTimeToHeaders(t *testing.T) {
	const hold = 1500 * time.Millisecond
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(hold)
			io.WriteString(w, "done")
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: hello\n\n")
			w.(http.Flusher).Flush()
			time.Sleep(hold)
		case "/ws":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			_, _ = io.Copy(io.Discard, brw) // until the client closes
		}
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	c := client()

	// bucketOf runs one request and returns the upper bound of the latency
	// bucket it was recorded in.
	bucketOf := func(name string, do func()) time.Duration {
		t.Helper()
		before := r.Counts(route.Blue)
		start := time.Now()
		do()
		if took := time.Since(start); took < hold {
			t.Fatalf("%s took %s, want at least %s", name, took, hold)
		}
		eventually(t, name+" recorded", 3*time.Second, func() bool { return r.Counts(route.Blue).Requests == before.Requests+1 })
		d := r.Counts(route.Blue).Sub(before)
		for i, n := range d.Latency {
			if n == 1 {
				return metrics.BucketBound(i)
			}
		}
		t.Fatalf("%s: no latency bucket recorded: %v", name, d.Latency)
		return 0
	}
	if b := bucketOf("plain request", func() { get(t, c, r.url+"/slow") }); b < hold {
		t.Errorf("plain %s request recorded in bucket le=%s, want le>=%s", hold, b, hold)
	}
	sse := bucketOf("event stream", func() {
		resp, err := c.Get(r.url + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "data: hello\n\n" {
			t.Fatalf("stream: %q %v", b, err)
		}
	})
	// Time to headers is a few milliseconds, but -race on a loaded machine
	// stretches it; below half the hold still tells it from the whole hold.
	if sse > hold/2 {
		t.Errorf("event stream held %s recorded in bucket le=%s, want le<=%s (time to headers, not the session)", hold, sse, hold/2)
	}
	ws := bucketOf("websocket", func() {
		conn, _ := upgrade(t, r.url)
		time.Sleep(hold)
		conn.Close()
	})
	if ws > hold/2 {
		t.Errorf("websocket session held %s recorded in bucket le=%s, want le<=%s (time to the upgrade, not the session)", hold, ws, hold/2)
	}
}
