package awsfake

import (
	"math"
	"sort"
	"sync"
	"time"
)

// stats records the data plane's outcomes per second, per load balancer
// and target group, for the fake CloudWatch and for tests. Its lock is
// held only for an append; no control-plane operation takes it.
type stats struct {
	mu     sync.Mutex
	series map[seriesKey]map[int64]*bucket
}

// seriesKey names a series by CloudWatch dimensions; tg is "" for requests
// no target group answered (fixed responses, no group to pick).
type seriesKey struct{ lb, tg string }

type bucket struct {
	requests float64 // every request
	// chosen counts the requests for which a target was chosen (what
	// CloudWatch's RequestCount counts).
	chosen    float64
	target2xx float64
	target3xx float64
	target4xx float64
	target5xx float64
	elb5xx    float64
	elb4xx    float64
	// connErrors counts the requests whose target could not be
	// connected to (TargetConnectionErrorCount).
	connErrors float64
	latencies  []float64 // seconds, of requests a target answered
}

func newStats() *stats { return &stats{series: map[seriesKey]map[int64]*bucket{}} }

// record adds one request: chosen says whether a target was chosen for
// it, elbCode is the load balancer's own error status
// (0 when a target or a fixed response answered), code the status the
// target or fixed response gave, latency the target's response time.
func (s *stats) record(lb, tg string, at time.Time, chosen bool, elbCode, code int, latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bucket(lb, tg, at)
	b.requests++
	if chosen {
		b.chosen++
	}
	switch {
	case elbCode >= 500:
		b.elb5xx++
		return
	case elbCode >= 400:
		b.elb4xx++
		return
	}
	if tg == "" {
		return
	}
	switch code / 100 {
	case 2:
		b.target2xx++
	case 3:
		b.target3xx++
	case 4:
		b.target4xx++
	case 5:
		b.target5xx++
	}
	if code != 0 {
		b.latencies = append(b.latencies, latency.Seconds())
	}
}

// connectionError adds a failed connection to a target of tg; the
// request itself is recorded by record.
func (s *stats) connectionError(lb, tg string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bucket(lb, tg, at).connErrors++
}

// bucket returns the series' bucket of at's second; s.mu is held.
func (s *stats) bucket(lb, tg string, at time.Time) *bucket {
	k := seriesKey{lb, tg}
	m := s.series[k]
	if m == nil {
		m = map[int64]*bucket{}
		s.series[k] = m
	}
	sec := at.Unix()
	b := m[sec]
	if b == nil {
		b = &bucket{}
		m[sec] = b
	}
	return b
}

// window sums the buckets in [from, to) of the series matching lb and tg
// (tg "*" matches every target group of lb, "" included).
func (s *stats) window(lb, tg string, from, to time.Time) bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out bucket
	for k, m := range s.series {
		if k.lb != lb && lb != "*" || tg != "*" && k.tg != tg {
			continue
		}
		for sec, b := range m {
			if sec < from.Unix() || sec >= to.Unix() {
				continue
			}
			out.requests += b.requests
			out.chosen += b.chosen
			out.target2xx += b.target2xx
			out.target3xx += b.target3xx
			out.target4xx += b.target4xx
			out.target5xx += b.target5xx
			out.elb5xx += b.elb5xx
			out.elb4xx += b.elb4xx
			out.connErrors += b.connErrors
			out.latencies = append(out.latencies, b.latencies...)
		}
	}
	return out
}

// percentile returns the p-th percentile (0..100) of xs by nearest rank.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}

// Counts is what a target group's data plane served over some time.
type Counts struct {
	Requests  int
	Target2xx int
	Target4xx int
	Target5xx int
	// ELB5xx counts requests the load balancer itself failed (no routable
	// target: 503; the target refused or reset the connection: 502).
	ELB5xx int
	// ConnectionErrors counts requests whose target could not be
	// connected to (their 502 is in ELB5xx too).
	ConnectionErrors int
	// P99 is the 99th percentile of the target response time.
	P99 time.Duration
}

// Counts returns the data plane's record for a target group since the
// given time (zero: since the start), over every load balancer.
func (e *ELB) Counts(tgARN string, since time.Time) Counts {
	e.mu.Lock()
	tg := e.tgs[tgARN]
	e.mu.Unlock()
	if tg == nil {
		return Counts{}
	}
	b := e.stats.window("*", tg.dimension(), since, time.Now().Add(time.Second))
	c := Counts{Requests: int(b.requests), Target2xx: int(b.target2xx), Target4xx: int(b.target4xx), Target5xx: int(b.target5xx), ELB5xx: int(b.elb5xx), ConnectionErrors: int(b.connErrors)}
	if p := percentile(b.latencies, 99); !math.IsNaN(p) {
		c.P99 = time.Duration(p * float64(time.Second))
	}
	return c
}
