package bench

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// Splitter is the part of a router the switch test drives: it makes live
// take everything but candidateWeight, and the other colour candidateWeight.
// The weight's unit is the router's; SwitchOptions.Full says what "all" is.
type Splitter interface {
	SetSplit(live route.Color, candidateWeight float64) error
}

// SwitchOptions configures RunSwitchTest. The zero value of every field
// except Addr and Splitter picks the default noted beside it.
type SwitchOptions struct {
	// Addr is the router's public address ("host:port").
	Addr string
	// Splitter changes the router's weights.
	Splitter Splitter
	// Conns is the number of keep-alive connections; default 32.
	Conns int
	// Flips is the number of weight changes; default 1000. The first half
	// alternate 100/0 and 0/100, the second half 90/10 and 10/90.
	Flips int
	// Hold is how long each weight stays before the next flip; default 10ms,
	// several request round trips under this load, so that a flip window
	// almost always holds a complete request.
	Hold time.Duration
	// Minor is the candidate weight of a 90/10 split in the router's unit;
	// default 10 (percent).
	Minor float64
	// Warmup is how long the clients run at 100/0 before the first flip;
	// default 300ms.
	Warmup time.Duration
}

func (o *SwitchOptions) defaults() {
	if o.Conns == 0 {
		o.Conns = 32
	}
	if o.Flips == 0 {
		o.Flips = 1000
	}
	if o.Hold == 0 {
		o.Hold = 10 * time.Millisecond
	}
	if o.Minor == 0 {
		o.Minor = 10
	}
	if o.Warmup == 0 {
		o.Warmup = 300 * time.Millisecond
	}
}

// SwitchReport holds what RunSwitchTest measured.
type SwitchReport struct {
	// Conns is the number of load connections.
	Conns int
	// Requests is the number of requests sent, Failed those that ended in
	// any error, a non-200 status or a closed connection.
	Requests, Failed int
	// Closes counts responses that announced "Connection: close" (the
	// request itself succeeded; the client had to dial again).
	Closes int
	// Errors holds up to ten distinct failure messages.
	Errors []string
	// FullFlips is the number of 100/0 <-> 0/100 flips; Stale counts
	// responses from the old colour to requests sent after such a flip
	// returned; Missed counts flips after which no request sent in the hold
	// window landed on the new colour.
	FullFlips, Stale, Missed int
	// FirstNew holds, per full flip, the time from SetSplit returning to the
	// completion of the first request sent after that which the new colour
	// answered, sorted. A missed flip counts as its whole window, so misses
	// raise the high quantiles instead of vanishing from them.
	FirstNew []time.Duration
	// FirstNewRTT holds the round trip of each of those first requests
	// (send to completion), sorted: what of FirstNew is the request itself
	// rather than the wait for a connection to send it.
	FirstNewRTT []time.Duration
	// PartialFlips is the number of 90/10 <-> 10/90 flips; MajorShare is the
	// share of responses from the majority colour to requests sent inside
	// their windows (0.9 expected).
	PartialFlips int
	MajorShare   float64
	// Latency holds the p50 and p99 of every successful load request, for
	// scale.
	LatencyP50, LatencyP99 time.Duration
	// Elapsed is the wall time of the flipping phase.
	Elapsed time.Duration
	// The idle probe connection, and SetSplit against the control
	// operation.
	probeReport
}

// OK reports whether the run met the hard requirements: no failed request
// (load or probe), no stale colour after a full flip on the load
// connections or on the probe, and a probe answer after every full flip.
func (r *SwitchReport) OK() bool {
	return r.Failed == 0 && r.Stale == 0 && r.ProbeStale == 0 && r.ProbeMissed == 0 &&
		r.Requests > 0 && len(r.ProbeNew) > 0
}

// event is one request as a client connection saw it; times are
// nanoseconds since the test began (monotonic).
type event struct {
	send, done int64
	color      route.Color
	ok         bool
}

// flip is one weight change: the state the router was put in, when SetSplit
// was called and when it returned.
type flip struct {
	called int64
	at     int64
	live   route.Color
	weight float64
	full   bool
}

// RunSwitchTest holds opts.Conns keep-alive connections to the router at
// full speed (each sends its next request as soon as the previous response
// is read) while it flips the weights opts.Flips times, and reports what the
// clients saw. It returns an error only when the test itself could not run;
// failed requests are in the report.
func RunSwitchTest(ctx context.Context, opts SwitchOptions) (*SwitchReport, error) {
	opts.defaults()
	if err := opts.Splitter.SetSplit(route.Blue, 0); err != nil {
		return nil, fmt.Errorf("initial split 100/0: %w", err)
	}
	// SetSplit and the control operation with no load on the router yet:
	// the call's own cost on this machine, for comparison with the same
	// call under load below.
	var pr probeReport
	for n := range quietCalls {
		c0 := time.Now()
		controlOp(route.Blue, 0, n)
		t := time.Now()
		if err := opts.Splitter.SetSplit(route.Blue, 0); err != nil {
			return nil, fmt.Errorf("split 100/0 before the load: %w", err)
		}
		pr.QuietControl = append(pr.QuietControl, t.Sub(c0))
		pr.QuietSetSplit = append(pr.QuietSetSplit, time.Since(t))
	}
	start := time.Now()
	since := func() int64 { return int64(time.Since(start)) }

	var stop atomic.Bool
	var wg sync.WaitGroup
	workers := make([]*switchWorker, opts.Conns)
	for i := range workers {
		w := &switchWorker{addr: opts.Addr, since: since, stop: &stop, events: make([]event, 0, 1<<15)}
		workers[i] = w
		wg.Go(w.run)
	}
	select {
	case <-time.After(opts.Warmup):
	case <-ctx.Done():
	}
	plan := switchPlan(opts.Flips, opts.Minor)
	flips := make([]flip, 0, len(plan))
	pr.SetSplit = make([]time.Duration, 0, len(plan))
	pr.Control = make([]time.Duration, 0, len(plan))
	// The probe connection is dialled and used once before the first flip,
	// so that its first measured request does not pay for the dial or the
	// router's first request on a connection.
	pb := &probe{addr: opts.Addr}
	defer pb.close()
	pb.dial()
	pb.do()
	pb.dial()
	flipStart := time.Now()
	var splitErr error
	for n, f := range plan {
		if ctx.Err() != nil {
			break
		}
		// The control operations, timed in the same loop just before
		// SetSplit: a CPU-only spin as long as SetSplit under load, then a
		// trivial store; their outliers can only be scheduling.
		pr.Spin = append(pr.Spin, controlSpin())
		c0 := time.Now()
		controlOp(f.live, f.weight, n)
		t := time.Now()
		pr.Control = append(pr.Control, t.Sub(c0))
		f.called = int64(t.Sub(start))
		if err := opts.Splitter.SetSplit(f.live, f.weight); err != nil {
			splitErr = fmt.Errorf("flip %d to %s/%v: %w", len(flips)+1, f.live, f.weight, err)
			break
		}
		ret := time.Now()
		f.at = int64(ret.Sub(start))
		// The probe's request goes out at once on its idle connection.
		color, ok := pb.do()
		probeDone := time.Now()
		pr.SetSplit = append(pr.SetSplit, ret.Sub(t))
		flips = append(flips, f)
		if f.full {
			switch {
			case !ok:
				pr.ProbeMissed++
			case color != f.live:
				pr.ProbeStale++
				pr.ProbeNew = append(pr.ProbeNew, probeDone.Sub(ret))
			default:
				pr.ProbeNew = append(pr.ProbeNew, probeDone.Sub(ret))
			}
		}
		// Half a hold later, the same request on the same connection with
		// no swap just before it: the probe's round trip for comparison.
		pb.dial()
		sleepUntil(t.Add(opts.Hold / 2))
		q0 := time.Now()
		color, ok = pb.do()
		if ok {
			pr.ProbeQuiet = append(pr.ProbeQuiet, time.Since(q0))
			if f.full && color != f.live {
				pr.ProbeStale++
			}
		}
		pb.dial()
		sleepUntil(t.Add(opts.Hold))
	}
	end := since()
	elapsed := time.Since(flipStart)
	stop.Store(true)
	wg.Wait()
	if splitErr != nil {
		return nil, splitErr
	}
	rep := analyse(workers, flips, end)
	rep.Elapsed = elapsed
	rep.Conns = opts.Conns
	pr.ProbeRequests, pr.ProbeFailed, pr.ProbeRedials = pb.sent, pb.failed, pb.redials
	for _, s := range []*[]time.Duration{&pr.ProbeNew, &pr.ProbeQuiet, &pr.SetSplit, &pr.Control, &pr.Spin, &pr.QuietSetSplit, &pr.QuietControl} {
		slices.Sort(*s)
	}
	rep.probeReport = pr
	rep.Requests += pb.sent
	rep.Failed += pb.failed
	rep.Closes += pb.closes
	for _, e := range pb.errs {
		if len(rep.Errors) < 10 && !slices.Contains(rep.Errors, e) {
			rep.Errors = append(rep.Errors, e)
		}
	}
	return rep, nil
}

// switchPlan lists the flips: n/2 alternating all-green/all-blue starting
// from all-blue, then the rest alternating 90/10 and 10/90.
func switchPlan(n int, minor float64) []flip {
	plan := make([]flip, 0, n)
	live := route.Blue
	for i := 0; i < n/2; i++ {
		live = live.Other()
		plan = append(plan, flip{live: live, weight: 0, full: true})
	}
	for i := n / 2; i < n; i++ {
		live = live.Other()
		plan = append(plan, flip{live: live, weight: minor})
	}
	return plan
}

// switchWorker drives one connection; it owns its events until the test
// stops it.
type switchWorker struct {
	addr   string
	since  func() int64
	stop   *atomic.Bool
	events []event
	failed int
	closes int
	errs   []string
}

func (w *switchWorker) run() {
	var rc *RawConn
	defer func() {
		if rc != nil {
			rc.Close()
		}
	}()
	for !w.stop.Load() {
		if rc == nil {
			c, err := DialRaw(w.addr, "bench.local", "/")
			if err != nil {
				w.fail(fmt.Sprintf("dial: %v", err))
				time.Sleep(time.Millisecond)
				continue
			}
			rc = c
		}
		send := w.since()
		resp, err := rc.Do()
		done := w.since()
		switch {
		case err != nil:
			w.fail(err.Error())
			rc.Close()
			rc = nil
			continue
		case resp.Status != 200:
			w.fail(fmt.Sprintf("status %d", resp.Status))
		default:
			c, cerr := route.ParseColor(resp.Color)
			if cerr != nil {
				w.fail(fmt.Sprintf("response without a colour: X-Color %q", resp.Color))
				break
			}
			w.events = append(w.events, event{send: send, done: done, color: c, ok: true})
		}
		if resp.Close {
			w.closes++
			rc.Close()
			rc = nil
		}
	}
}

func (w *switchWorker) fail(msg string) {
	w.failed++
	if len(w.errs) < 10 && !slices.Contains(w.errs, msg) {
		w.errs = append(w.errs, msg)
	}
}

// analyse turns the workers' events and the flip log into a report. A flip
// owns the requests sent after its SetSplit returned and completed before
// the next SetSplit was called: the router surely served those with this
// flip's weights. Requests that straddle a flip are left out.
func analyse(workers []*switchWorker, flips []flip, end int64) *SwitchReport {
	rep := &SwitchReport{}
	var all []event
	for _, w := range workers {
		all = append(all, w.events...)
		rep.Failed += w.failed
		rep.Closes += w.closes
		for _, e := range w.errs {
			if len(rep.Errors) < 10 && !slices.Contains(rep.Errors, e) {
				rep.Errors = append(rep.Errors, e)
			}
		}
	}
	rep.Requests = len(all) + rep.Failed
	sort.Slice(all, func(i, j int) bool { return all[i].send < all[j].send })

	lat := make([]time.Duration, len(all))
	for i, e := range all {
		lat[i] = time.Duration(e.done - e.send)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		rep.LatencyP50, rep.LatencyP99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}

	var major, inPartial int
	for i, f := range flips {
		until := end
		if i+1 < len(flips) {
			until = flips[i+1].called
		}
		lo := sort.Search(len(all), func(k int) bool { return all[k].send >= f.at })
		if !f.full {
			rep.PartialFlips++
			for _, e := range all[lo:] {
				if e.send >= until {
					break
				}
				if e.done > until {
					continue
				}
				inPartial++
				if e.color == f.live {
					major++
				}
			}
			continue
		}
		rep.FullFlips++
		first, firstSend := int64(-1), int64(0)
		for _, e := range all[lo:] {
			if e.send >= until {
				break
			}
			if e.done > until {
				continue
			}
			if e.color != f.live {
				rep.Stale++
				continue
			}
			if first < 0 || e.done < first {
				first, firstSend = e.done, e.send
			}
		}
		if first < 0 {
			rep.Missed++
			rep.FirstNew = append(rep.FirstNew, time.Duration(until-f.at))
			continue
		}
		rep.FirstNew = append(rep.FirstNew, time.Duration(first-f.at))
		rep.FirstNewRTT = append(rep.FirstNewRTT, time.Duration(first-firstSend))
	}
	slices.Sort(rep.FirstNew)
	slices.Sort(rep.FirstNewRTT)
	if inPartial > 0 {
		rep.MajorShare = float64(major) / float64(inPartial)
	}
	return rep
}

// Quantile returns the q-quantile of sorted durations, 0 when empty.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// Print writes the report as the lines run.sh shows.
func (r *SwitchReport) Print(out func(format string, args ...any)) {
	q := func(d []time.Duration) string {
		return fmt.Sprintf("p50 %v  p99 %v  max %v", us(Quantile(d, 0.5)), us(Quantile(d, 0.99)), us(Quantile(d, 1)))
	}
	out("switch test: %d requests over %d flips in %v, %d failed, %d server closes\n",
		r.Requests, r.FullFlips+r.PartialFlips, r.Elapsed.Round(time.Millisecond), r.Failed, r.Closes)
	for _, e := range r.Errors {
		out("  error: %s\n", e)
	}
	out("  100/0<->0/100 flips: %d\n", r.FullFlips)
	out("  idle probe connection (one request sent as soon as SetSplit returns; what a new request sees):\n")
	out("    swap -> new-colour response: %s  (goal: within 1ms)\n", q(r.ProbeNew))
	out("    old-colour probe answers: %d; flips without a probe answer: %d; probe requests %d, failed %d, redials %d\n",
		r.ProbeStale, r.ProbeMissed, r.ProbeRequests, r.ProbeFailed, r.ProbeRedials)
	out("    same request half a hold after the swap (no swap just before): %s\n", q(r.ProbeQuiet))
	out("  %d busy load connections (a request sent after the swap queues behind in-flight work):\n", r.Conns)
	out("    stale old-colour responses after a swap: %d; flips with no new-colour response in the window: %d\n",
		r.Stale, r.Missed)
	out("    swap -> first new-colour response: %s\n", q(r.FirstNew))
	out("    of which that request's own round trip: p50 %v  p99 %v\n", us(Quantile(r.FirstNewRTT, 0.5)), us(Quantile(r.FirstNewRTT, 0.99)))
	out("    request latency under this load: p50 %v  p99 %v\n", us(r.LatencyP50), us(r.LatencyP99))
	out("  90/10<->10/90 flips: %d; share of the majority colour inside windows: %.3f (0.900 expected)\n",
		r.PartialFlips, r.MajorShare)
	out("  SetSplit call, under load:                    %s\n", q(r.SetSplit))
	out("  control, same loop: atomic.Pointer Store      %s\n", q(r.Control))
	out("  control, same loop: %v CPU-only spin        %s\n", spinFor, q(r.Spin))
	out("  SetSplit call, before the load (%d calls):   %s\n", len(r.QuietSetSplit), q(r.QuietSetSplit))
	out("  control, before the load: atomic.Pointer Store %s\n", q(r.QuietControl))
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	out("  verdict: %s (zero failed requests, zero stale responses on load and probe connections)\n", verdict)
}

// us rounds for printing: to 100ns below 100µs, to a microsecond above.
func us(d time.Duration) time.Duration {
	if d < 100*time.Microsecond {
		return d.Round(100 * time.Nanosecond)
	}
	return d.Round(time.Microsecond)
}
