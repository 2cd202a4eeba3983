package bench

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// probe is the switch test's extra keep-alive connection, not one of the
// load connections: the flipping goroutine itself uses it, so it is idle
// at every swap and the request it sends right after SetSplit returns is
// the first thing on it since the previous flip. It measures what a new
// request sees after a swap, with no queueing behind in-flight work.
type probe struct {
	addr    string
	rc      *RawConn
	sent    int
	failed  int
	closes  int
	redials int
	errs    []string
}

// dial opens the probe's connection when it has none. It is called only
// between measurements, so a dial never counts in a probe's time.
func (p *probe) dial() {
	if p.rc != nil {
		return
	}
	rc, err := DialRaw(p.addr, "bench.local", "/")
	if err != nil {
		p.fail(fmt.Sprintf("probe dial: %v", err))
		return
	}
	if p.sent > 0 {
		p.redials++
	}
	p.rc = rc
}

// do sends one request and returns its colour; ok is false when the probe
// had no connection or the request failed (counted in failed). After an
// error or a "Connection: close" the connection is dropped; the next dial
// replaces it.
func (p *probe) do() (c route.Color, ok bool) {
	if p.rc == nil {
		return 0, false
	}
	p.sent++
	resp, err := p.rc.Do()
	switch {
	case err != nil:
		p.fail("probe: " + err.Error())
		p.close()
		return 0, false
	case resp.Status != 200:
		p.fail(fmt.Sprintf("probe: status %d", resp.Status))
	default:
		c, err = route.ParseColor(resp.Color)
		if err != nil {
			p.fail(fmt.Sprintf("probe: response without a colour: X-Color %q", resp.Color))
		} else {
			ok = true
		}
	}
	if resp.Close {
		p.closes++
		p.close()
	}
	return c, ok
}

func (p *probe) close() {
	if p.rc != nil {
		p.rc.Close()
		p.rc = nil
	}
}

func (p *probe) fail(msg string) {
	p.failed++
	if len(p.errs) < 10 && !slices.Contains(p.errs, msg) {
		p.errs = append(p.errs, msg)
	}
}

// controlState is what the control operation publishes: a fresh struct
// of about the size of a small routing table header, so that the store
// costs an allocation as well as the atomic write.
type controlState struct {
	live    route.Color
	weight  float64
	version [4]uint64
}

// controlSink keeps the control operation's result reachable.
var controlSink atomic.Pointer[controlState]

// controlOp is the trivial operation timed beside every SetSplit call in
// the same loop: anything it takes beyond a few hundred nanoseconds is the
// flipping goroutine waiting for a CPU, not work.
func controlOp(live route.Color, weight float64, n int) {
	controlSink.Store(&controlState{live: live, weight: weight, version: [4]uint64{uint64(n)}})
}

// spinFor is the length of the second control operation: a CPU-only
// busy loop about as long as SetSplit under load, so that it is as
// exposed as SetSplit to being descheduled. Its excess over spinFor is
// time the flipping goroutine spent off the CPU.
const spinFor = 30 * time.Microsecond

var spinSink uint64

// controlSpin busy-loops without allocating, locking or calling the
// router until spinFor has passed, and returns how long it took.
func controlSpin() time.Duration {
	t := time.Now()
	x := uint64(1)
	for time.Since(t) < spinFor {
		for range 64 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	spinSink = x
	return time.Since(t)
}

// sleepUntil sleeps until t (at once when t has passed).
func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// probeReport is the probe's part of SwitchReport.
type probeReport struct {
	// ProbeRequests and ProbeFailed count the probe's requests and those
	// that failed (also in Requests and Failed); ProbeRedials counts
	// connections the probe had to open again after the first.
	ProbeRequests, ProbeFailed, ProbeRedials int
	// ProbeNew holds, per full flip, the time from SetSplit returning to
	// the complete response of the request the probe sent at once on its
	// idle connection, sorted. ProbeStale counts those answered by the old
	// colour, and old-colour answers to the second probe request in a
	// full flip's window (must be 0); ProbeMissed counts full flips with
	// no probe response (the probe had no connection or its request
	// failed).
	ProbeNew                []time.Duration
	ProbeStale, ProbeMissed int
	// ProbeQuiet holds the round trip of the probe's second request in
	// each window, sent half a hold after the swap, sorted: the same
	// request on the same idle connection with no swap just before it.
	// ProbeNew minus ProbeQuiet is what a swap adds for a new request.
	ProbeQuiet []time.Duration
	// SetSplit holds how long every SetSplit call took and Control how
	// long the control operation (an atomic.Pointer Store of a freshly
	// allocated struct) took just before it in the same loop, sorted.
	// Spin holds the durations of controlSpin, also in that loop.
	SetSplit, Control, Spin []time.Duration
	// QuietSetSplit and QuietControl are the same two timings taken
	// quietCalls times on the same router before the clients start, sorted.
	QuietSetSplit, QuietControl []time.Duration
}

// quietCalls is how many SetSplit calls are timed before the load starts.
const quietCalls = 200
