package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// The daemon keeps, per service, the last quarter of an hour of its public
// traffic, one sample a second, for the dashboard's charts: in memory only
// (a restart or an upgrade starts it empty), a fixed ring allocated once.
// Its cost is historySeconds × metrics.SampleBytes per service (900 × 248
// bytes, about 218 KiB; metrics.TestHistoryMemory prints the figure).
const (
	historySeconds = 15 * 60
	sampleEvery    = time.Second
)

// The Daemon serves its traffic history to the dashboard.
var _ api.TrafficSource = (*Daemon)(nil)

// trafficHistory is one service's ring of samples and the API streams
// that want each new sample as it is taken.
type trafficHistory struct {
	ring *metrics.History

	mu   sync.Mutex
	subs map[chan api.TrafficSample]struct{}
}

func newTrafficHistory() *trafficHistory {
	return &trafficHistory{ring: metrics.NewHistory(historySeconds), subs: map[chan api.TrafficSample]struct{}{}}
}

// publish hands s to every subscriber without ever blocking the sampler:
// a subscriber whose buffer is full misses that second.
func (th *trafficHistory) publish(s api.TrafficSample) {
	th.mu.Lock()
	defer th.mu.Unlock()
	for ch := range th.subs {
		select {
		case ch <- s:
		default:
		}
	}
}

func (th *trafficHistory) add(ch chan api.TrafficSample) {
	th.mu.Lock()
	th.subs[ch] = struct{}{}
	th.mu.Unlock()
}

func (th *trafficHistory) remove(ch chan api.TrafficSample) {
	th.mu.Lock()
	delete(th.subs, ch)
	th.mu.Unlock()
}

// sampleTraffic takes one sample of svc's router a second until ctx is
// done. The router's counters are cumulative; a sample is the difference
// from the previous second (the counters only reset with the daemon, which
// also empties the ring, so a decrease cannot happen within one run).
func (d *Daemon) sampleTraffic(ctx context.Context, svc *service, wg *sync.WaitGroup) {
	th := svc.traffic
	wg.Go(func() {
		var prev [2]metrics.Counts
		for _, c := range route.Colors {
			prev[c] = svc.router.Counts(c)
		}
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				s := metrics.Sample{At: now.UnixMilli()}
				live, w := svc.router.Split()
				s.Weight[live] = float32(100 - w)
				s.Weight[live.Other()] = float32(w)
				for _, c := range route.Colors {
					cur := svc.router.Counts(c)
					s.Colors[c] = metrics.NewSecondCounts(cur.Sub(prev[c]))
					prev[c] = cur
					h, t := svc.router.Healthy(c)
					s.Healthy[c], s.Total[c] = uint16(min(h, 1<<16-1)), uint16(min(t, 1<<16-1))
				}
				th.ring.Add(s)
				th.publish(api.TrafficSample{Service: svc.name, Sample: s})
			}
		}
	})
}

// TrafficHistory implements api.TrafficSource.
func (d *Daemon) TrafficHistory(name string) ([]metrics.Sample, error) {
	svc, err := d.service(name)
	if err != nil {
		return nil, err
	}
	return svc.traffic.ring.Samples(0), nil
}

// SubscribeTraffic implements api.TrafficSource: the samples of one
// service, or of every service when name is "", until ctx is done.
func (d *Daemon) SubscribeTraffic(ctx context.Context, name string) (<-chan api.TrafficSample, error) {
	var svcs []*service
	if name != "" {
		svc, err := d.service(name)
		if err != nil {
			return nil, err
		}
		svcs = append(svcs, svc)
	} else {
		for _, n := range d.Services() {
			if svc, err := d.service(n); err == nil {
				svcs = append(svcs, svc)
			}
		}
	}
	ch := make(chan api.TrafficSample, 8*max(len(svcs), 1))
	for _, svc := range svcs {
		svc.traffic.add(ch)
	}
	go func() {
		<-ctx.Done()
		for _, svc := range svcs {
			svc.traffic.remove(ch)
		}
		close(ch)
	}()
	return ch, nil
}
