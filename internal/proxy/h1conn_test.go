package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// h1Of returns the h1 pool of the router's only blue instance.
func h1Of(t *testing.T, r *Router) *h1pool {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.pools[route.Blue].members
	if len(m) != 1 || m[0].h1 == nil {
		t.Fatalf("want one blue instance with an h1 pool, have %d", len(m))
	}
	return m[0].h1
}

// TestH1StaleIdleConnRetried: every upstream connection the instance keeps
// idle is closed behind the router's back; requests of every kind the
// engine sends still succeed, with no ejection and no upstream failure.
func TestH1StaleIdleConnRetried(t *testing.T) {
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	})
	svc := testService()
	svc.Health.Interval = time.Hour
	// The first probe runs at once; the connection cuts below must not
	// fail it and mark the instance unhealthy.
	svc.Health.UnhealthyThreshold = 1000
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	c := client()
	for i := range 20 {
		method, body := http.MethodGet, ""
		switch i % 3 {
		case 1:
			method, body = http.MethodPost, "payload"
		case 2:
			method = http.MethodDelete
		}
		req, _ := http.NewRequest(method, r.url+"/", strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := method + " " + body; resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
		if h1Of(t, r.Router).idleCount() != 1 {
			t.Fatalf("request %d: upstream connection not kept idle", i)
		}
		in.srv.CloseClientConnections()  // the instance drops its idle connections
		time.Sleep(5 * time.Millisecond) // let the FIN arrive
	}
	if h, _ := r.Healthy(route.Blue); h != 1 {
		t.Fatal("instance ejected for a stale idle connection")
	}
	if f := r.Counts(route.Blue).UpstreamFailures; f != 0 {
		t.Fatalf("%d upstream failures", f)
	}
}

// TestH1BackendClosingKeepAliveUnderLoad: an instance that closes each
// connection after a few requests (as servers with a keep-alive request
// limit do, without saying so) costs clients nothing.
func TestH1BackendClosingKeepAliveUnderLoad(t *testing.T) {
	var n atomic.Int64
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
		if n.Add(1)%3 == 0 {
			// Cut the connection after the answer, with no Connection: close.
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}
	})
	svc := testService()
	svc.Health.Interval = time.Hour
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	c := client()
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 150 {
				resp, err := c.Get(r.url + "/")
				if err != nil {
					failed.Add(1)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of 2400 requests failed", f)
	}
	if f := r.Counts(route.Blue).UpstreamFailures; f != 0 {
		t.Fatalf("%d upstream failures", f)
	}
}

// TestH1PoolCapAndIdleTimeout: at most the cap stays idle, and idle
// connections close after the idle timeout.
func TestH1PoolCapAndIdleTimeout(t *testing.T) {
	var open atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // keep requests overlapping
		io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p := newH1Pool(srv.Listener.Addr().String(), newTransport(time.Second, nil), secondTimeout())
	p.max, p.idleTimeout = 3, 300*time.Millisecond
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodGet, "http://web.example/", nil)
			req.Body = nil
			st := &reqState{w: httptest.NewRecorder(), in: req}
			res, err := p.roundTrip(st, req, &outbound{rw: st})
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		})
	}
	wg.Wait()
	if n := p.idleCount(); n != 3 {
		t.Fatalf("%d idle after 8 parallel requests, want the cap of 3", n)
	}
	eventually(t, "extra connections closed", 2*time.Second, func() bool { return open.Load() == 3 })
	eventually(t, "idle connections closed after the idle timeout", 2*time.Second, func() bool {
		return p.idleCount() == 0 && open.Load() == 0
	})
}

// TestH1ClientCancelFreesConn: a client that gives up while the instance
// is still thinking aborts the upstream exchange at once; the connection
// is closed, not pooled, and the request is counted as the client's.
func TestH1ClientCancelFreesConn(t *testing.T) {
	gone := make(chan struct{})
	in := newInstance(t, "web-blue-1", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the router closed the upstream connection
		close(gone)
	})
	svc := testService()
	svc.Health.Interval = time.Hour
	r := startRouter(t, svc)
	r.SetPool(route.Blue, "v1", backends(in))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/", nil)
	if _, err := client().Do(req); err == nil {
		t.Fatal("want the client's deadline to end the request")
	}
	select {
	case <-gone:
	case <-time.After(2 * time.Second):
		t.Fatal("upstream connection still open 2s after the client left")
	}
	eventually(t, "request finished", 2*time.Second, func() bool { return r.Counts(route.Blue).InFlight == 0 })
	if n := h1Of(t, r.Router).idleCount(); n != 0 {
		t.Fatalf("%d idle connections; the aborted one must not be pooled", n)
	}
	if c := r.Counts(route.Blue); c.UpstreamFailures != 0 {
		t.Fatalf("counts %+v: a client leaving is not an upstream failure", c)
	}
	if h, _ := r.Healthy(route.Blue); h != 1 {
		t.Fatal("instance ejected because a client left")
	}
}

// idleCount returns how many connections are idle.
func (p *h1pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
