package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Writes to the API during upgrades are neither refused nor lost: a
// client registers an address and deregisters it again, over and over,
// while the daemon is upgraded three times. The old daemon waits for the
// writes under way before it hands over, and sends those that arrive
// meanwhile on to the new daemon. A lost registration would make its
// deregistration fail ("not registered"), a refused one fails outright.
func TestWritesDuringUpgradesAreNeitherRefusedNorLost(t *testing.T) {
	e := newEnv(t)
	v1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", "v1")
		fmt.Fprintln(w, "v1")
	}))
	t.Cleanup(v1.Close)
	cfg := fmt.Sprintf(`api:
  listen: %s
services:
  web:
    listen: %s
    preview_listen: %s
    runtime:
      static:
        versions:
          v1: [%q]
    health:
      interval: 200ms
      timeout: 1s
      healthy_threshold: 1
      unhealthy_threshold: 2
    drain_timeout: 3s
`, e.api, e.public, e.preview, v1.Listener.Addr().String())
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start()
	t.Cleanup(e.stopUpgraded)
	e.mustCLI(0, "deploy", "web", "v1", "--wait")

	var ok atomic.Int64
	var failMu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Nothing listens on these ports: the addresses never join the pool,
	// which keeps serving v1; only their registration is at stake.
	addrs := []string{"127.0.0.1:" + freePort(t), "127.0.0.1:" + freePort(t)}
	for w, addr := range addrs {
		// One writer opens a connection per request, the other keeps one.
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: w == 0}}
		wg.Go(func() {
			body := fmt.Appendf(nil, `{"version":"v1","addr":%q}`, addr)
			for {
				for _, method := range []string{http.MethodPost, http.MethodDelete} {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest(method, "http://"+e.api+"/v1/services/web/instances", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					resp, err := c.Do(req)
					if err == nil {
						resp.Body.Close()
					}
					if err != nil || resp.StatusCode != http.StatusNoContent {
						failMu.Lock()
						failures = append(failures, fmt.Sprintf("%s %s: %v %v", method, addr, err, func() any {
							if resp != nil {
								return resp.Status
							}
							return ""
						}()))
						failMu.Unlock()
						return // the pair is broken; later writes would only repeat it
					}
					ok.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	for i := range 3 {
		time.Sleep(300 * time.Millisecond)
		before := e.daemonPID()
		e.mustCLI(0, "upgrade")
		if e.daemonPID() == before {
			t.Fatalf("upgrade %d: the pid file still names pid %d", i+1, before)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("3 upgrades: %d registrations and deregistrations answered, failures %v", ok.Load(), failures)
	if len(failures) != 0 {
		t.Errorf("writes failed across the upgrades, want none: %v", failures)
	}
	if ok.Load() < 20 {
		t.Errorf("only %d writes were made; the test proves little", ok.Load())
	}
	e.mustServe("v1")
}
