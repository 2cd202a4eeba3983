package metrics

import (
	"sync"
	"time"
	"unsafe"
)

// SecondCounts is what one colour's public traffic did during one second:
// the difference of two Counts snapshots a second apart, narrowed to 32-bit
// counters (a colour would need over four billion requests in a second to
// wrap one) so that a quarter of an hour of them stays small.
type SecondCounts struct {
	Requests uint32
	Errors   uint32 // 5xx, upstream failures included (Counts.Errors)
	Latency  [NumBuckets]uint32
}

// NewSecondCounts narrows the difference d of two snapshots.
func NewSecondCounts(d Counts) SecondCounts {
	s := SecondCounts{Requests: narrow(d.Requests), Errors: narrow(d.Errors())}
	for i, n := range d.Latency {
		s.Latency[i] = narrow(n)
	}
	return s
}

func narrow(n uint64) uint32 {
	if n > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(n)
}

// Counts widens s back into a Counts, so that its quantiles are estimated
// the way analysis estimates them.
func (s SecondCounts) Counts() Counts {
	c := Counts{Requests: uint64(s.Requests)}
	c.Class[5] = uint64(s.Errors)
	for i, n := range s.Latency {
		c.Latency[i] = uint64(n)
	}
	return c
}

// Sample is one second of a service's public traffic, per colour (indexed
// as route.Color: 0 blue, 1 green), with the instances and the split the
// router had at its end.
type Sample struct {
	// At is the end of the second, in Unix milliseconds.
	At      int64
	Colors  [2]SecondCounts
	Healthy [2]uint16
	Total   [2]uint16
	// Weight is each colour's percent of public traffic.
	Weight [2]float32
}

// Time returns At as a time.Time.
func (s Sample) Time() time.Time { return time.UnixMilli(s.At) }

// SampleBytes is the memory one Sample takes in a History.
const SampleBytes = int(unsafe.Sizeof(Sample{}))

// History is a fixed-size ring of the latest samples of one service. Its
// memory is allocated once by NewHistory (size × SampleBytes) and never
// grows. It is safe for concurrent use; it is written once a second and
// read by the API, never on the request path.
type History struct {
	mu   sync.Mutex
	buf  []Sample
	next int // where the next sample goes
	full bool
}

// NewHistory returns an empty History that keeps the last size samples.
func NewHistory(size int) *History {
	return &History{buf: make([]Sample, max(size, 1))}
}

// Add appends s, overwriting the oldest sample once the ring is full.
func (h *History) Add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf[h.next] = s
	h.next++
	if h.next == len(h.buf) {
		h.next, h.full = 0, true
	}
}

// Samples returns a copy of the samples taken at or after since (Unix
// milliseconds; 0 for all), oldest first.
func (h *History) Samples(since int64) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Sample
	if h.full {
		out = append(out, h.buf[h.next:]...)
	}
	out = append(out, h.buf[:h.next]...)
	i := 0
	for i < len(out) && out[i].At < since {
		i++
	}
	return out[i:]
}

// Len returns how many samples h holds.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.full {
		return len(h.buf)
	}
	return h.next
}

// Bytes returns the memory h's ring takes.
func (h *History) Bytes() int { return len(h.buf) * SampleBytes }
