package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

func TestAnalyseJudgesOnlyRequestsInsideAFlipWindow(t *testing.T) {
	ms := func(f float64) int64 { return int64(f * float64(time.Millisecond)) }
	// Flip 1 makes everything green at 10 ms (called at 9.9); flip 2 makes
	// everything blue, called at 20 ms.
	flips := []flip{
		{called: ms(9.9), at: ms(10), live: route.Green, full: true},
		{called: ms(20), at: ms(20.1), live: route.Blue, full: true},
	}
	cases := []struct {
		name      string
		events    []event
		stale     int
		missed    int
		firstNew  time.Duration
		rttOfNew  time.Duration
		wantFirst bool
	}{
		{name: "sent before the swap, old colour: not judged",
			events: []event{{send: ms(9), done: ms(11), color: route.Blue, ok: true},
				{send: ms(10.2), done: ms(10.8), color: route.Green, ok: true}},
			firstNew: 800 * time.Microsecond, rttOfNew: 600 * time.Microsecond, wantFirst: true},
		{name: "sent after the swap, old colour: stale",
			events: []event{{send: ms(10.1), done: ms(10.5), color: route.Blue, ok: true},
				{send: ms(10.2), done: ms(11), color: route.Green, ok: true}},
			stale: 1, firstNew: time.Millisecond, rttOfNew: 800 * time.Microsecond, wantFirst: true},
		{name: "straddles the next flip: not judged, flip missed",
			events: []event{{send: ms(19), done: ms(21), color: route.Blue, ok: true}},
			missed: 1},
		{name: "earliest completion wins, not earliest send",
			events: []event{{send: ms(10.1), done: ms(13), color: route.Green, ok: true},
				{send: ms(10.5), done: ms(11.5), color: route.Green, ok: true}},
			firstNew: 1500 * time.Microsecond, rttOfNew: time.Millisecond, wantFirst: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &switchWorker{events: tc.events}
			// Only the first flip is judged: end the run at its successor.
			rep := analyse([]*switchWorker{w}, flips[:1], flips[1].called)
			if rep.Stale != tc.stale || rep.Missed != tc.missed {
				t.Fatalf("stale %d missed %d, want %d %d", rep.Stale, rep.Missed, tc.stale, tc.missed)
			}
			if !tc.wantFirst {
				return
			}
			if len(rep.FirstNewRTT) != 1 || rep.FirstNew[0] != tc.firstNew || rep.FirstNewRTT[0] != tc.rttOfNew {
				t.Fatalf("first new %v rtt %v, want %v %v", rep.FirstNew, rep.FirstNewRTT, tc.firstNew, tc.rttOfNew)
			}
		})
	}
}

func TestSwitchPlanAlternatesFullThenPartial(t *testing.T) {
	plan := switchPlan(6, 10)
	want := []flip{
		{live: route.Green, full: true}, {live: route.Blue, full: true}, {live: route.Green, full: true},
		{live: route.Blue, weight: 10}, {live: route.Green, weight: 10}, {live: route.Blue, weight: 10},
	}
	for i := range want {
		if plan[i] != want[i] {
			t.Fatalf("flip %d: got %+v, want %+v", i, plan[i], want[i])
		}
	}
}

// fakeRouter answers every request with the colour it was last told is
// live, or keeps answering blue when it ignores SetSplit (a router whose
// swap does not take effect).
type fakeRouter struct {
	live   atomic.Int32
	ignore bool
}

func (f *fakeRouter) SetSplit(live route.Color, _ float64) error {
	if !f.ignore {
		f.live.Store(int32(live))
	}
	return nil
}

func (f *fakeRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Color", route.Color(f.live.Load()).String())
	w.Header().Set("Content-Length", "3")
	io.WriteString(w, "ok\n")
}

func TestSwitchProbeSeesEveryFullFlipAndCatchesAStaleRouter(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignore=%v", ignore), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := &fakeRouter{ignore: ignore}
			addr := serveLocal(ctx, t, f)
			// Flips: green, blue (full), then two partial ones.
			rep, err := RunSwitchTest(ctx, SwitchOptions{Addr: addr, Splitter: f, Conns: 2, Flips: 4,
				Hold: 20 * time.Millisecond, Warmup: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Failed != 0 || rep.ProbeFailed != 0 || rep.ProbeMissed != 0 {
				t.Fatalf("failed %d (probe %d), probe missed %d: %v", rep.Failed, rep.ProbeFailed, rep.ProbeMissed, rep.Errors)
			}
			if len(rep.ProbeNew) != 2 || len(rep.ProbeQuiet) != 4 || len(rep.SetSplit) != 4 || len(rep.Control) != 4 || len(rep.Spin) != 4 ||
				len(rep.QuietSetSplit) != quietCalls || len(rep.QuietControl) != quietCalls {
				t.Fatalf("probe new %d quiet %d, SetSplit %d control %d timings; want 2 4 4 4",
					len(rep.ProbeNew), len(rep.ProbeQuiet), len(rep.SetSplit), len(rep.Control))
			}
			// 1 warm-up request, then two per flip.
			if rep.ProbeRequests != 9 || rep.ProbeRedials != 0 {
				t.Fatalf("probe requests %d redials %d, want 9 0", rep.ProbeRequests, rep.ProbeRedials)
			}
			// Ignoring the swap to green leaves both of that window's
			// probe answers blue.
			wantStale := 0
			if ignore {
				wantStale = 2
			}
			if rep.ProbeStale != wantStale || rep.OK() == ignore {
				t.Fatalf("probe stale %d OK %v, want %d %v", rep.ProbeStale, rep.OK(), wantStale, !ignore)
			}
		})
	}
}
