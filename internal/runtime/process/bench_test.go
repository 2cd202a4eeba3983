package process

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// BenchmarkStartPool measures Start of a pool of the test app, from launch
// until every instance passed its health check, one instance at a time
// (the default) and all at once (parallel=N). Stop is not timed.
func BenchmarkStartPool(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		for _, parallel := range slices.Compact([]int{1, n}) {
			b.Run(fmt.Sprintf("instances=%d/parallel=%d", n, parallel), func(b *testing.B) {
				benchmarkStartPool(b, n, parallel)
			})
		}
	}
}

func benchmarkStartPool(b *testing.B, n, parallel int) {
	opts := testService(n, nil)
	opts.Parallel = parallel
	opts.StateDir, opts.Logger = b.TempDir(), slog.New(slog.DiscardHandler)
	d, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := d.Start(ctx, route.Blue, runtime.Release{Version: fmt.Sprint("v", i)}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := d.Stop(ctx, route.Blue); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkSupervisedMemory reports what the daemon holds per supervised
// instance: Go heap, goroutines and resident memory of this process, before
// and after starting a pool of 32 instances.
func BenchmarkSupervisedMemory(b *testing.B) {
	const n = 32
	opts := testService(n, nil)
	opts.StateDir, opts.Logger = b.TempDir(), slog.New(slog.DiscardHandler)
	d, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	var heap, rss, gor float64
	i := 0
	for b.Loop() {
		i++
		h0, r0, g0 := footprint()
		if _, err := d.Start(ctx, route.Green, runtime.Release{Version: fmt.Sprint("v", i)}); err != nil {
			b.Fatal(err)
		}
		h1, r1, g1 := footprint()
		heap += float64(h1-h0) / n
		rss += float64(r1-r0) / n
		gor += float64(g1-g0) / n
		b.StopTimer()
		if err := d.Stop(ctx, route.Green); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(heap/float64(i), "heap-B/instance")
	b.ReportMetric(rss/float64(i), "rss-B/instance")
	b.ReportMetric(gor/float64(i), "goroutines/instance")
}

// footprint returns live heap bytes after a GC, resident bytes and the
// number of goroutines of this process.
func footprint() (heap, rss int64, goroutines int) {
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	return int64(ms.HeapAlloc), rss, goruntime.NumGoroutine()
}
