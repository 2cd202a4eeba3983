package metrics_test

import (
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
)

func TestHistoryRing(t *testing.T) {
	h := metrics.NewHistory(3)
	if got := h.Samples(0); len(got) != 0 || h.Len() != 0 {
		t.Fatalf("new history holds %v", got)
	}
	for at := int64(1); at <= 5; at++ {
		h.Add(metrics.Sample{At: at * 1000})
	}
	got := h.Samples(0)
	if len(got) != 3 || got[0].At != 3000 || got[2].At != 5000 || h.Len() != 3 {
		t.Fatalf("after 5 adds to a ring of 3: %v", got)
	}
	if got := h.Samples(4000); len(got) != 2 || got[0].At != 4000 {
		t.Errorf("since 4000: %v", got)
	}
	if got := h.Samples(9000); len(got) != 0 {
		t.Errorf("since the future: %v", got)
	}
	// Samples returns a copy: changing it changes nothing in the ring.
	got[0].At = 42
	if h.Samples(0)[0].At != 3000 {
		t.Error("Samples shares the ring's memory")
	}
}

func TestSecondCounts(t *testing.T) {
	var c metrics.Counts
	c.Requests, c.Class[2], c.Class[5] = 100, 90, 10
	c.Latency[3], c.Latency[10] = 98, 2 // 98 at <= 3ms, 2 at <= 50ms
	s := metrics.NewSecondCounts(c)
	if s.Requests != 100 || s.Errors != 10 {
		t.Fatalf("narrowed: %+v", s)
	}
	if got, want := s.Counts().Quantile(0.99), c.Quantile(0.99); got != want {
		t.Errorf("p99 after narrowing %v, before %v", got, want)
	}
	c.Requests = 1 << 40
	if s := metrics.NewSecondCounts(c); s.Requests != 1<<32-1 {
		t.Errorf("a count over 32 bits narrows to %d, want the 32-bit maximum", s.Requests)
	}
}

// The dashboard's 15 minutes at one sample a second: what a service costs
// the daemon in memory.
func TestHistoryMemory(t *testing.T) {
	const seconds = 15 * 60
	h := metrics.NewHistory(seconds)
	if metrics.SampleBytes != 248 {
		t.Errorf("a sample takes %d bytes; the README says 248", metrics.SampleBytes)
	}
	t.Logf("traffic history: %d bytes per sample, %d bytes (%.0f KiB) per service for %s",
		metrics.SampleBytes, h.Bytes(), float64(h.Bytes())/1024, time.Duration(seconds)*time.Second)
	allocs := testing.AllocsPerRun(100, func() { h.Add(metrics.Sample{At: 1}) })
	if allocs != 0 {
		t.Errorf("Add allocates %.0f times; the ring is allocated once", allocs)
	}
}
