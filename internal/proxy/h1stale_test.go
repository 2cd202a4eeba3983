package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// An instance that drops a kept-alive connection after taking a POST (which
// cannot be replayed) costs that request a 502, but the instance stays in
// rotation: the next request is served by it.
func TestH1ReusedConnFailureDoesNotEject(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Drop") != "" {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // gone without an answer
			}
			return
		}
		io.WriteString(w, "ok")
	})
	svc := testService()
	svc.Health.Interval = time.Hour
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	c := client()

	get := func() int {
		resp, err := c.Get(r.url + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 200 { // leaves a kept-alive upstream connection
		t.Fatalf("first request: %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, r.url+"/", strings.NewReader("payload"))
	req.Header.Set("X-Drop", "1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("dropped POST: %d, want 502", resp.StatusCode)
	}
	if h, _ := r.Healthy(route.Blue); h != 1 {
		t.Fatal("the instance was ejected for dropping one kept-alive connection")
	}
	if code := get(); code != 200 {
		t.Fatalf("request after the drop: %d, want 200 from the same instance", code)
	}
}
