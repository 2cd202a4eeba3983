package runtime

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// ErrPortsExhausted is returned (wrapped) by PortAllocator.Allocate when no
// free port is left.
var ErrPortsExhausted = errors.New("no free port left")

// PortAllocator hands out free TCP ports on 127.0.0.1 and remembers which it
// handed out, so that two pools (or two services of one daemon) never get
// the same port even before their instances have bound it. One allocator is
// shared by every process-runtime driver of a daemon.
//
// A port is found free by binding it and closing the socket at once; an
// unrelated program may still take it before the instance binds it, which
// then fails the instance's start and is handled like any other crash.
//
// The zero value allocates from the kernel's ephemeral range. It is safe for
// concurrent use.
type PortAllocator struct {
	mu       sync.Mutex
	reserved map[int]struct{}
	lo, hi   int // inclusive range; 0 means the kernel chooses
	next     int
}

// NewPortRange returns an allocator that only hands out ports in [lo, hi].
func NewPortRange(lo, hi int) *PortAllocator {
	return &PortAllocator{lo: lo, hi: hi, next: lo}
}

// Allocate reserves and returns a port that was free on 127.0.0.1 when it
// was checked. The caller returns it with Release when its instance is gone.
func (a *PortAllocator) Allocate() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reserved == nil {
		a.reserved = make(map[int]struct{})
	}
	if a.lo > 0 {
		return a.allocateInRange()
	}
	for range 64 {
		p, err := probePort(0)
		if err != nil {
			return 0, fmt.Errorf("allocate port: %w", err)
		}
		if _, taken := a.reserved[p]; !taken {
			a.reserved[p] = struct{}{}
			return p, nil
		}
	}
	return 0, fmt.Errorf("allocate port: %w", ErrPortsExhausted)
}

func (a *PortAllocator) allocateInRange() (int, error) {
	n := a.hi - a.lo + 1
	for range n {
		p := a.next
		a.next++
		if a.next > a.hi {
			a.next = a.lo
		}
		if _, taken := a.reserved[p]; taken {
			continue
		}
		if _, err := probePort(p); err != nil {
			continue
		}
		a.reserved[p] = struct{}{}
		return p, nil
	}
	return 0, fmt.Errorf("allocate port in %d-%d: %w", a.lo, a.hi, ErrPortsExhausted)
}

// Reserve marks a port as taken without checking it, for instances that
// already listen on it (adopted after a daemon restart). It reports false
// when the port was already reserved.
func (a *PortAllocator) Reserve(port int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reserved == nil {
		a.reserved = make(map[int]struct{})
	}
	if _, taken := a.reserved[port]; taken {
		return false
	}
	a.reserved[port] = struct{}{}
	return true
}

// Release returns a port to the allocator. Releasing a port that is not
// reserved does nothing.
func (a *PortAllocator) Release(port int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.reserved, port)
}

// probePort binds 127.0.0.1:port (0 = any) and returns the port bound.
func probePort(port int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
