// Package metrics holds the per-colour request counters that the router
// records on the request path and the controller's analysis reads.
//
// A Recorder is safe for concurrent use and lock-free: every field is an
// atomic counter. Counts is a plain value (a snapshot); analysis works on the
// difference of two snapshots taken at the ends of a window.
package metrics

import (
	"math"
	"sync/atomic"
	"time"
)

// NumBuckets is the number of latency histogram buckets, including the
// overflow bucket.
const NumBuckets = len(bucketBounds) + 1

// bucketBounds are the upper bounds of the latency buckets, roughly
// logarithmic from 0.5 ms to 30 s (Prometheus-style "le" bounds).
var bucketBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond,
	5 * time.Millisecond, 7500 * time.Microsecond, 10 * time.Millisecond, 15 * time.Millisecond,
	20 * time.Millisecond, 30 * time.Millisecond, 50 * time.Millisecond, 75 * time.Millisecond,
	100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond,
	500 * time.Millisecond, 750 * time.Millisecond, time.Second, 1500 * time.Millisecond,
	2 * time.Second, 3 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// BucketBound returns the upper bound of bucket i; the last (overflow) bucket
// has no bound and reports math.MaxInt64.
func BucketBound(i int) time.Duration {
	if i >= len(bucketBounds) {
		return time.Duration(math.MaxInt64)
	}
	return bucketBounds[i]
}

// Counts is a snapshot of one colour's cumulative counters.
type Counts struct {
	// Requests is the number of completed requests, including those that
	// failed upstream.
	Requests uint64 `json:"requests"`
	// Class counts responses by status class: index 1 is 1xx ... index 5 is 5xx.
	// Index 0 is unused.
	Class [6]uint64 `json:"class"`
	// UpstreamFailures counts requests that got no response from any
	// instance (connection refused, reset, timeout); the router answered them
	// itself with 502/504, so they are also counted in Class[5].
	UpstreamFailures uint64 `json:"upstream_failures"`
	// InFlight is the number of requests in progress when the snapshot was taken.
	InFlight int64 `json:"in_flight"`
	// Latency counts completed requests by duration bucket.
	Latency [NumBuckets]uint64 `json:"latency"`
}

// Errors returns the number of requests that count as errors for analysis:
// every 5xx response, which includes upstream failures.
func (c Counts) Errors() uint64 { return c.Class[5] }

// ErrorRate returns Errors/Requests, or 0 when there were no requests.
func (c Counts) ErrorRate() float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Errors()) / float64(c.Requests)
}

// Sub returns the counters accumulated between prev and c. InFlight is c's.
func (c Counts) Sub(prev Counts) Counts {
	out := Counts{Requests: c.Requests - prev.Requests, UpstreamFailures: c.UpstreamFailures - prev.UpstreamFailures, InFlight: c.InFlight}
	for i := range c.Class {
		out.Class[i] = c.Class[i] - prev.Class[i]
	}
	for i := range c.Latency {
		out.Latency[i] = c.Latency[i] - prev.Latency[i]
	}
	return out
}

// Quantile estimates the q-quantile (0 < q <= 1) of latency by linear
// interpolation inside the bucket that holds it. It returns 0 when no request
// was recorded. Requests in the overflow bucket report the last finite bound.
func (c Counts) Quantile(q float64) time.Duration {
	var total uint64
	for _, n := range c.Latency {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen uint64
	for i, n := range c.Latency {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		if i >= len(bucketBounds) {
			return bucketBounds[len(bucketBounds)-1]
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = bucketBounds[i-1]
		}
		frac := (rank - float64(seen)) / float64(n)
		return lo + time.Duration(frac*float64(bucketBounds[i]-lo))
	}
	return bucketBounds[len(bucketBounds)-1]
}

// Recorder accumulates one colour's counters. The zero value is ready to use.
type Recorder struct {
	requests  atomic.Uint64
	class     [6]atomic.Uint64
	upstream  atomic.Uint64
	inFlight  atomic.Int64
	latencies [NumBuckets]atomic.Uint64
}

// Start marks a request as in flight; call Done when it completes.
func (r *Recorder) Start() { r.inFlight.Add(1) }

// Done records a completed request with its status code and duration.
// upstreamFailed reports that no instance answered it.
func (r *Recorder) Done(status int, d time.Duration, upstreamFailed bool) {
	r.inFlight.Add(-1)
	r.requests.Add(1)
	class := status / 100
	if class < 1 || class > 5 {
		class = 5
	}
	r.class[class].Add(1)
	if upstreamFailed {
		r.upstream.Add(1)
	}
	r.latencies[bucketFor(d)].Add(1)
}

// InFlight returns the number of requests currently in progress.
func (r *Recorder) InFlight() int64 { return r.inFlight.Load() }

// Snapshot returns the current counters. Counters are read one by one, so a
// snapshot taken under load may be off by the requests that completed while
// it was read; analysis windows are long enough for that not to matter.
func (r *Recorder) Snapshot() Counts {
	c := Counts{Requests: r.requests.Load(), UpstreamFailures: r.upstream.Load(), InFlight: r.inFlight.Load()}
	for i := range r.class {
		c.Class[i] = r.class[i].Load()
	}
	for i := range r.latencies {
		c.Latency[i] = r.latencies[i].Load()
	}
	return c
}

func bucketFor(d time.Duration) int {
	lo, hi := 0, len(bucketBounds)
	for lo < hi { // first bound >= d
		mid := (lo + hi) / 2
		if bucketBounds[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
