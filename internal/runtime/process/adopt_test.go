package process

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

// hang makes the test app at addr stop answering its health check.
func hang(t *testing.T, addr string) { hangFor(t, addr, 0) }

// hangFor makes the test app at addr stop answering its health check for
// d, then answer again (0: for good).
func hangFor(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/hang?ms=%d", addr, d.Milliseconds()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// startBothAndClose starts blue v1 and green v2 on h's driver and closes
// it, leaving both pools running for another driver to adopt; their
// process groups are killed when the test ends.
func startBothAndClose(t *testing.T, h *harness) (blue, green []runtime.Instance) {
	t.Helper()
	ctx := context.Background()
	blue, err := h.d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	green, err = h.d.Start(ctx, route.Green, runtime.Release{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	h.d.Close()
	for _, in := range append(slices.Clone(blue), green...) {
		killOnCleanup(t, in.PID)
	}
	return blue, green
}

// recordedPIDs returns the pids the record file holds, by colour.
func recordedPIDs(t *testing.T, d *Driver) map[route.Color][]int {
	t.Helper()
	rec, err := d.readRecords()
	if err != nil {
		t.Fatal(err)
	}
	out := map[route.Color][]int{}
	for _, p := range rec.Pools {
		for _, in := range p.Instances {
			out[p.Color] = append(out[p.Color], in.PID)
		}
	}
	return out
}

// While one pool is still being gated at adoption, the other's adoption
// rewrites the record file; the pool still gating must stay in it, or a
// crash of the daemon then leaves its processes running and never adopted.
func TestAdoptKeepsPoolsStillGatingRecorded(t *testing.T) {
	stateDir := t.TempDir()
	a := newHarness(t, testService(1, nil), stateDir, nil)
	ctx := context.Background()
	blue, green := startBothAndClose(t, a)
	hang(t, green[0].Addr) // green's adopt gate now lasts 3s

	b := newHarness(t, testService(1, nil), stateDir, nil)
	done := make(chan error, 1)
	go func() {
		_, err := b.d.Adopt(ctx)
		done <- err
	}()
	b.rec.WaitPool(t, route.Blue, 10*time.Second, "blue adopted", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 1
	})
	select {
	case err := <-done:
		t.Fatalf("Adopt returned (%v) before green's gate was over; the test proves nothing", err)
	default:
	}
	got := recordedPIDs(t, b.d)
	if !slices.Equal(got[route.Blue], pids(blue)) || !slices.Equal(got[route.Green], pids(green)) {
		t.Errorf("record file while green is still gating: %v, want blue %v and green %v", got, pids(blue), pids(green))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
