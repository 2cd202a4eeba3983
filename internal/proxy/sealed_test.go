package proxy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// A colour is sealed only once Drain took it out of rotation and its last
// request in flight has finished; Undrain unseals it.
func TestSealedAfterDrainAndLastRequest(t *testing.T) {
	release := make(chan struct{})
	inst := newInstance(t, "web-green-1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	})
	live := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(live))
	r.SetPool(route.Green, "v2", backends(inst))
	if err := r.SetSplit(route.Blue, 100); err != nil {
		t.Fatal(err)
	}
	if r.Sealed(route.Green) {
		t.Fatal("a colour in rotation is sealed")
	}
	c := client()
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, c, r.url+"/slow")
	}()
	eventually(t, "request in flight on green", 2*time.Second, func() bool { return r.Counts(route.Green).InFlight == 1 })
	if err := r.SetSplit(route.Blue, 0); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- r.Drain(context.Background(), route.Green) }()
	eventually(t, "green out of rotation", 2*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.pools[route.Green].disabled
	})
	if r.Sealed(route.Green) {
		t.Error("sealed while a request is still in flight")
	}
	close(release)
	<-done
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if !r.Sealed(route.Green) {
		t.Error("not sealed after the drain finished its last request")
	}
	r.Undrain(route.Green)
	if r.Sealed(route.Green) {
		t.Error("still sealed after Undrain")
	}
}
