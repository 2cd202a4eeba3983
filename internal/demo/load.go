package demo

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// load is the demo's traffic: a fixed number of workers sending GETs at a
// bounded total rate through the public router with a client that never
// retries, counting what each colour and version answered. Every failure
// (transport error or 5xx) is counted, so "0 failed requests" is a measured
// claim, not a hope.
type load struct {
	url    string
	client *http.Client

	mu        sync.Mutex
	byColor   map[string]*tally // key: colour
	byVersion map[string]*tally // key: version
	firstErr  map[string]time.Time

	total, failed, transportErrs atomic.Uint64
}

type tally struct{ ok, fail uint64 }

func newLoad(url string) *load {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	return &load{
		url:       url,
		client:    &http.Client{Transport: tr, Timeout: 10 * time.Second},
		byColor:   map[string]*tally{},
		byVersion: map[string]*tally{},
		firstErr:  map[string]time.Time{},
	}
}

// run sends about rps requests per second from workers goroutines until ctx
// is done.
func (l *load) run(ctx context.Context, workers, rps int) {
	var wg sync.WaitGroup
	interval := time.Duration(workers) * time.Second / time.Duration(rps)
	for range workers {
		wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					l.once(ctx)
				}
			}
		})
	}
	wg.Wait()
	l.client.CloseIdleConnections()
}

func (l *load) once(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return
	}
	resp, err := l.client.Do(req)
	if ctx.Err() != nil {
		if err == nil {
			resp.Body.Close()
		}
		return // the demo is ending; not the router's failure
	}
	l.total.Add(1)
	if err != nil {
		l.failed.Add(1)
		l.transportErrs.Add(1)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	failed := resp.StatusCode >= 500
	if failed {
		l.failed.Add(1)
	}
	color, version := resp.Header.Get("X-Color"), resp.Header.Get("X-Version")
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, pair := range [...]struct {
		m map[string]*tally
		k string
	}{{l.byColor, color}, {l.byVersion, version}} {
		t := pair.m[pair.k]
		if t == nil {
			t = &tally{}
			pair.m[pair.k] = t
		}
		if failed {
			t.fail++
		} else {
			t.ok++
		}
	}
	if failed && l.firstErr[version].IsZero() {
		l.firstErr[version] = time.Now()
	}
}

// snapshot is a copy of the counters at one moment.
type snapshot struct {
	total, failed uint64
	byColor       map[string]tally
	byVersion     map[string]tally
}

func (l *load) snapshot() snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := snapshot{total: l.total.Load(), failed: l.failed.Load(), byColor: map[string]tally{}, byVersion: map[string]tally{}}
	for k, v := range l.byColor {
		s.byColor[k] = *v
	}
	for k, v := range l.byVersion {
		s.byVersion[k] = *v
	}
	return s
}

// firstError returns when a response from version first failed (zero if never).
func (l *load) firstError(version string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstErr[version]
}

// since returns the counts accumulated between prev and s.
func (s snapshot) since(prev snapshot) snapshot {
	out := snapshot{total: s.total - prev.total, failed: s.failed - prev.failed, byColor: map[string]tally{}, byVersion: map[string]tally{}}
	for k, v := range s.byColor {
		p := prev.byColor[k]
		out.byColor[k] = tally{ok: v.ok - p.ok, fail: v.fail - p.fail}
	}
	for k, v := range s.byVersion {
		p := prev.byVersion[k]
		out.byVersion[k] = tally{ok: v.ok - p.ok, fail: v.fail - p.fail}
	}
	return out
}
