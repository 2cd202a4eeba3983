package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type transition struct {
	healthy bool
	probes  int64
	err     error
}

func TestWatchTransitionsWithThresholds(t *testing.T) {
	var up atomic.Bool
	var probes atomic.Int64
	up.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		probes.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan transition, 10)
	var wg sync.WaitGroup
	wg.Go(func() {
		Watch(ctx, srv.Client(), "http", strings.TrimPrefix(srv.URL, "http://"),
			Config{Interval: 10 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3},
			true, func(h bool, err error) { changes <- transition{h, probes.Load(), err} })
	})

	// Healthy and staying healthy: no transition.
	time.Sleep(60 * time.Millisecond)
	select {
	case c := <-changes:
		t.Fatalf("unexpected transition %+v while healthy", c)
	default:
	}

	before := probes.Load()
	up.Store(false)
	c := waitChange(t, changes)
	if c.healthy || c.err == nil || !strings.Contains(c.err.Error(), "status 503") {
		t.Fatalf("got %+v, want unhealthy with the probe's error", c)
	}
	if n := c.probes - before; n < 3 {
		t.Fatalf("turned unhealthy after %d failed probes, want >= 3", n)
	}

	before = probes.Load()
	up.Store(true)
	c = waitChange(t, changes)
	if !c.healthy || c.err != nil {
		t.Fatalf("got %+v, want healthy", c)
	}
	if n := c.probes - before; n < 2 {
		t.Fatalf("turned healthy after %d passing probes, want >= 2", n)
	}

	cancel()
	wg.Wait()
	after := probes.Load()
	time.Sleep(40 * time.Millisecond)
	if probes.Load() != after {
		t.Fatal("probing continued after ctx was cancelled")
	}
}

func TestWatchUnreachableStartsUnhealthyAndRecovers(t *testing.T) {
	// initial=false on an address nobody listens on: no transition at all.
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ln.URL, "http://")
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var calls atomic.Int32
	Watch(ctx, http.DefaultClient, "http", addr, Config{Interval: 5 * time.Millisecond, Timeout: 50 * time.Millisecond},
		false, func(bool, error) { calls.Add(1) })
	if calls.Load() != 0 {
		t.Fatalf("%d transitions for an instance that stayed down", calls.Load())
	}
}

func waitChange(t *testing.T, ch <-chan transition) transition {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no transition within 5s")
		return transition{}
	}
}
