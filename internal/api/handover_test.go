package api_test

import (
	"context"
	"io"
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

// gated is a backend whose state has moved to another process once moved
// is set, as a daemon's is after an upgrade.
type gated struct {
	*apitest.Backend
	moved atomic.Bool
}

func (g *gated) EnterWrite(ctx context.Context) (func(), bool, error) {
	return func() {}, g.moved.Load(), nil
}

// A write that reaches the old daemon after its state moved is held until
// the old server has closed its listener, then sent on, as it came, to the
// server that took over the socket: the new backend runs it and the
// client gets its answer. Reads and the upgrade request are not held.
func TestWritesAfterTheStateMovedGoToTheNewServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	dup := func() net.Listener {
		f, err := ln.(*net.TCPListener).File()
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
	old := &gated{Backend: apitest.New("web")}
	oldCtx, stopOld := context.WithCancel(context.Background())
	oldDone := make(chan error, 1)
	go func() { oldDone <- api.NewServer(old, api.Options{}).Serve(oldCtx, dup()) }()
	defer stopOld()

	// Connections to the old server only: the new one is not serving yet.
	var clients []*http.Client
	for range 3 {
		// One connection per client: its requests never open another.
		c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
		resp, err := c.Get("http://" + addr + "/v1/services/web")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) // read to the end, or the connection is not kept
		resp.Body.Close()
		clients = append(clients, c)
	}

	next := apitest.New("web")
	newCtx, stopNew := context.WithCancel(context.Background())
	newDone := make(chan error, 1)
	go func() { newDone <- api.NewServer(next, api.Options{}).Serve(newCtx, dup()) }()
	defer func() { stopNew(); <-newDone }()

	old.moved.Store(true)
	// A read on a kept connection is still answered by the old server.
	resp, err := clients[0].Get("http://" + addr + "/v1/services/web")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("read after the state moved: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	codes := make(chan int, len(clients))
	for _, c := range clients {
		go func() {
			resp, err := c.Post("http://"+addr+"/v1/services/web/pause", "application/json", nil)
			if err != nil {
				t.Errorf("write: %v", err)
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	// Held: the old server still has its listener.
	select {
	case c := <-codes:
		t.Fatalf("a write was answered (%d) before the old server closed its listener (old ran %v, new %v)", c, old.Calls(), next.Calls())
	case <-time.After(300 * time.Millisecond):
	}
	stopOld()
	for range clients {
		if c := <-codes; c != http.StatusOK {
			t.Errorf("forwarded write answered %d, want 200 with the status", c)
		}
	}
	if err := <-oldDone; err != nil {
		t.Errorf("old server: %v", err)
	}
	pauses := func(b *apitest.Backend) (n int) {
		for _, c := range b.Calls() {
			if c == "[pause web]" {
				n++
			}
		}
		return n
	}
	if got := pauses(next); got != len(clients) {
		t.Errorf("the new backend ran %d pauses, want %d (calls %v)", got, len(clients), next.Calls())
	}
	if got := pauses(old.Backend); got != 0 {
		t.Errorf("the old backend ran %d pauses after its state moved, want 0", got)
	}
}
