package metrics

import (
	"testing"
	"time"
)

func TestQuantileAndSub(t *testing.T) {
	var r Recorder
	for i := 0; i < 99; i++ {
		r.Start()
		r.Done(200, 4*time.Millisecond, false)
	}
	r.Start()
	r.Done(502, 2*time.Second, true)
	first := r.Snapshot()
	if first.Requests != 100 || first.Errors() != 1 || first.UpstreamFailures != 1 || first.InFlight != 0 {
		t.Fatalf("counts = %+v", first)
	}
	if p50 := first.Quantile(0.5); p50 <= 3*time.Millisecond || p50 > 5*time.Millisecond {
		t.Errorf("p50 = %v, want in (3ms, 5ms]", p50)
	}
	if p999 := first.Quantile(0.999); p999 <= 1500*time.Millisecond || p999 > 2*time.Second {
		t.Errorf("p99.9 = %v, want in (1.5s, 2s]", p999)
	}
	for i := 0; i < 10; i++ {
		r.Start()
		r.Done(500, 40*time.Millisecond, false)
	}
	w := r.Snapshot().Sub(first)
	if w.Requests != 10 || w.Errors() != 10 || w.ErrorRate() != 1 {
		t.Fatalf("window = %+v", w)
	}
	if p99 := w.Quantile(0.99); p99 <= 30*time.Millisecond || p99 > 50*time.Millisecond {
		t.Errorf("window p99 = %v, want in (30ms, 50ms]", p99)
	}
	if (Counts{}).Quantile(0.99) != 0 || (Counts{}).ErrorRate() != 0 {
		t.Error("empty counts should report zero")
	}
}

func TestBucketFor(t *testing.T) {
	cases := map[time.Duration]int{0: 0, 500 * time.Microsecond: 0, 501 * time.Microsecond: 1, time.Hour: NumBuckets - 1}
	for d, want := range cases {
		if got := bucketFor(d); got != want {
			t.Errorf("bucketFor(%v) = %d, want %d", d, got, want)
		}
	}
}
