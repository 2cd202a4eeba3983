package runtime

import (
	"errors"
	"net"
	"sync"
	"testing"
)

func TestPortAllocatorNeverRepeats(t *testing.T) {
	var a PortAllocator // the zero value is ready
	seen := map[int]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				p, err := a.Allocate()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[p] {
					t.Errorf("port %d handed out twice", p)
				}
				seen[p] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for p := range seen {
		if a.Reserve(p) {
			t.Fatalf("Reserve(%d) of an allocated port succeeded", p)
		}
	}
}

func TestPortRangeExhaustion(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	// A range of one port that another program holds has nothing to give.
	a := NewPortRange(busy, busy)
	if _, err := a.Allocate(); !errors.Is(err, ErrPortsExhausted) || err == nil {
		t.Fatalf("Allocate from a busy range: %v, want ErrPortsExhausted", err)
	}
	l.Close()
	p, err := a.Allocate()
	if err != nil || p != busy {
		t.Fatalf("Allocate after the port was freed: %d, %v", p, err)
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrPortsExhausted) {
		t.Fatalf("second Allocate from a one-port range: %v", err)
	}
	a.Release(p)
	if p2, err := a.Allocate(); err != nil || p2 != p {
		t.Fatalf("Allocate after Release: %d, %v", p2, err)
	}
	if !a.Reserve(busy+1) || a.Reserve(busy+1) {
		t.Error("Reserve should succeed once, then report the port taken")
	}
}
