package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/daemon"
)

// A static service restarts with one of its two live addresses down: the
// daemon comes up at once (no health gate holds it) and every request is
// answered by the healthy address, none by the fallback page.
func TestStaticRestartWithAnAddressDown(t *testing.T) {
	var servers [2]*httptest.Server
	for i := range servers {
		servers[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" {
				io.WriteString(w, "ok")
				return
			}
			w.Header().Set("X-Version", "v1")
			io.WriteString(w, "v1")
		}))
		t.Cleanup(servers[i].Close)
	}
	runtime := fmt.Sprintf("      static:\n        versions:\n          v1: [%q, %q]\n",
		servers[0].Listener.Addr(), servers[1].Listener.Addr())
	f := newFixture(t, spec{Runtime: runtime})
	d := f.start(daemon.Options{})
	d.deployLive("v1", "")
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	servers[1].Close()
	start := time.Now()
	f.start(daemon.Options{})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("restart took %s with one address down; nothing should wait on it", took)
	}
	if got := versions(t, f.spec.Listen, 20); got["v1"] != 20 {
		t.Fatalf("after the restart traffic got %v, want all 20 from v1", got)
	}
}
