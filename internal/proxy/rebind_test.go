package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// Rebind serves the new listener before it closes the old one, and a
// request in flight on the old listener finishes with its answer.
func TestRebindKeepsInFlightRequestsOfTheOldListener(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(500 * time.Millisecond)
		}
		io.WriteString(w, "answered")
	})
	r := startRouter(t, testService())
	r.SetPool(route.Blue, "v1", backends(in))
	type result struct {
		code int
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(r.url + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- result{resp.StatusCode, string(b), err}
	}()
	time.Sleep(100 * time.Millisecond) // the slow request is in flight
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Rebind(context.Background(), true, ln); err != nil {
		t.Fatal(err)
	}
	if code, _, body := get(t, client(), "http://"+ln.Addr().String()+"/"); code != 200 || body != "answered" {
		t.Errorf("new listener: %d %q", code, body)
	}
	res := <-slow
	if res.err != nil || res.code != 200 || res.body != "answered" {
		t.Errorf("request in flight on the old listener during the rebind: %d %q %v, want 200", res.code, res.body, res.err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.url[len("http://"):], time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the old listener still accepts connections after the rebind")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Preview can be stopped and started again.
	if err := r.Rebind(context.Background(), false, nil); err != nil {
		t.Fatal(err)
	}
	pre, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := r.Rebind(context.Background(), false, pre); err != nil {
		t.Fatal(err)
	}
	r.SetPreview(route.Blue)
	if code, _, _ := get(t, client(), "http://"+pre.Addr().String()+"/"); code != 200 {
		t.Errorf("new preview listener answered %d", code)
	}
}

// Rebind of a router that does not serve fails; the listener stays the
// caller's.
func TestRebindNotServing(t *testing.T) {
	r, err := New(testService())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	if err := r.Rebind(context.Background(), true, ln); err == nil {
		t.Error("Rebind of a router that does not serve succeeded")
	}
}
