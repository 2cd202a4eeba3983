package api_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
)

// During an upgrade the old and the new daemon serve one API socket, and
// the old one stops. Clients reading the API meanwhile, on new connections
// (which no HTTP client retries) and on kept-alive ones, see every read
// answered: the old server answers what it accepted before it closes its
// listener, and the new one everything after. Five hand-overs in a row.
func TestAPIHandOverFailsNoRead(t *testing.T) {
	b := apitest.New("web")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // never served: each server gets its own copy
	addr := ln.Addr().String()
	// dup gives the listener another process would get over SCM_RIGHTS:
	// the same socket, with its own descriptor.
	dup := func(l net.Listener) net.Listener {
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		nl, err := net.FileListener(f)
		if err != nil {
			t.Fatal(err)
		}
		return nl
	}
	type running struct {
		stop context.CancelFunc
		done chan error
	}
	serve := func(l net.Listener) running {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- api.NewServer(b, api.Options{}).Serve(ctx, l) }()
		return running{cancel, done}
	}

	var ok, failed atomic.Int64
	var errMu sync.Mutex
	var errs []string
	halt := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		// Even workers open a connection per read, odd ones keep theirs.
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 0}}
		wg.Go(func() {
			for {
				select {
				case <-halt:
					return
				default:
				}
				resp, err := c.Get("http://" + addr + "/v1/services/web")
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					errMu.Lock()
					if len(errs) < 5 {
						errs = append(errs, func() string {
							if err != nil {
								return err.Error()
							}
							return resp.Status
						}())
					}
					errMu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}

	cur := serve(dup(ln))
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		next := serve(dup(ln))
		time.Sleep(20 * time.Millisecond)
		cur.stop()
		if err := <-cur.done; err != nil {
			t.Errorf("old server: %v", err)
		}
		cur = next
	}
	time.Sleep(150 * time.Millisecond)
	close(halt)
	wg.Wait()
	cur.stop()
	<-cur.done
	t.Logf("5 hand-overs: %d reads answered, %d failed %v", ok.Load(), failed.Load(), errs)
	if ok.Load() == 0 {
		t.Fatal("no read was answered")
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d reads failed over the hand-overs, want 0: %v", n, errs)
	}
}
