package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// Two routers serve one listening socket, as the old and the new daemon do
// during an upgrade. Stopping the old one while non-retrying clients keep
// sending on keep-alive connections fails none of their requests: each
// connection is closed after a response, never under a request.
func TestStoppingARouterThatSharesItsSocketCutsNoRequest(t *testing.T) {
	inst := newInstance(t, "web-blue-1", nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File() // the new process's copy of the socket
	if err != nil {
		t.Fatal(err)
	}
	lnNew, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	serve := func(l net.Listener) (context.CancelFunc, chan error) {
		r, err := New(testService())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		r.SetPool(route.Blue, "v1", backends(inst))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Serve(ctx, l, nil) }()
		return cancel, done
	}
	stopOld, oldDone := serve(ln)
	stopNew, newDone := serve(lnNew)
	defer func() { stopNew(); <-newDone }()

	var ok, failed atomic.Int64
	var lastErr atomic.Value
	halt := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var c net.Conn
			var br *bufio.Reader
			for {
				select {
				case <-halt:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				if c == nil {
					var err error
					if c, err = net.Dial("tcp", ln.Addr().String()); err != nil {
						failed.Add(1)
						lastErr.Store(err.Error())
						return
					}
					br = bufio.NewReader(c)
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					failed.Add(1)
					lastErr.Store("write: " + err.Error())
					c, br = nil, nil
					continue
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					failed.Add(1)
					lastErr.Store("read: " + err.Error())
					c.Close()
					c, br = nil, nil
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok.Add(1)
				if resp.Close {
					c.Close()
					c, br = nil, nil
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	waitFor := func(n int64) {
		deadline := time.Now().Add(5 * time.Second)
		for ok.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(200)
	stopOld()
	if err := <-oldDone; err != nil {
		t.Fatalf("old router: %v", err)
	}
	before := ok.Load()
	waitFor(before + 200)
	close(halt)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed while the old router stopped (last: %v)", n, n+ok.Load(), lastErr.Load())
	}
	if ok.Load() <= before {
		t.Fatalf("no request answered after the old router stopped")
	}
	t.Logf("%d requests, 0 failed", ok.Load())
}
