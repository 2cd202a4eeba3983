package daemon

import (
	"context"
	"testing"
	"time"
)

// An upgrade waits for the writes under way, holds the ones that arrive
// meanwhile, and lets them go: here when it failed, to the new daemon
// (moved) when it succeeded, and every write after that too.
func TestWriteGate(t *testing.T) {
	var g writeGate
	ctx := context.Background()
	leave, moved, err := g.EnterWrite(ctx)
	if err != nil || moved {
		t.Fatalf("first write: moved %v, err %v", moved, err)
	}
	held := make(chan error, 1)
	go func() { held <- g.hold(ctx) }()
	select {
	case <-held:
		t.Fatal("hold returned while a write was under way")
	case <-time.After(100 * time.Millisecond):
	}
	leave()
	leave() // a second call is harmless
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	type result struct {
		moved bool
		leave func()
	}
	enter := func() chan result {
		ch := make(chan result, 1)
		go func() {
			l, m, err := g.EnterWrite(ctx)
			if err != nil {
				t.Error(err)
			}
			ch <- result{m, l}
		}()
		return ch
	}
	w := enter()
	select {
	case <-w:
		t.Fatal("a write entered during the upgrade")
	case <-time.After(100 * time.Millisecond):
	}
	g.release(false) // the upgrade failed: the write runs here
	if r := <-w; r.moved {
		t.Fatal("write moved after a failed upgrade")
	} else {
		r.leave()
	}

	if err := g.hold(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	gone := make(chan error, 1)
	go func() { _, _, err := g.EnterWrite(cctx); gone <- err }()
	w = enter()
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("a held write whose client left did not return its context's error")
	}
	g.release(true)
	if r := <-w; !r.moved {
		t.Fatal("held write not moved after the upgrade handed over")
	}
	if _, m, _ := g.EnterWrite(ctx); !m {
		t.Fatal("a later write is not moved")
	}

	// hold gives up when its context ends first.
	var g2 writeGate
	l, _, _ := g2.EnterWrite(ctx)
	defer l()
	tctx, tcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer tcancel()
	if err := g2.hold(tctx); err == nil {
		t.Fatal("hold returned nil with a write stuck")
	}
	g2.release(false)
}
