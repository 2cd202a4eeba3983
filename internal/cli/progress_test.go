package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

// TestTTYProgressRedrawsInPlace checks that the live display erases exactly
// the lines it drew before drawing again, shows the figures per colour, and
// leaves only the outcome when done.
func TestTTYProgressRedrawsInPlace(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	p := &ttyProgress{w: &out, loc: time.UTC, width: func() int { return 200 }, now: func() time.Time { return t0 }}
	d := deploy.Deployment{ID: "d-1", Service: "web", Version: "v2", Color: route.Green}
	p.start(d)
	if p.drawn != 1 {
		t.Fatalf("start drew %d lines, want 1", p.drawn)
	}
	st := deploy.Status{Service: "web", Phase: deploy.PhaseShifting,
		Live: &deploy.PoolRef{Color: route.Blue, Version: "v1"}, Candidate: &deploy.PoolRef{Color: route.Green, Version: "v2"},
		Weights:    map[string]float64{"blue": 75, "green": 25},
		Deployment: &deploy.DeploymentRef{ID: "d-1", Step: 2, Steps: 3, StepUntil: t0.Add(12 * time.Second)},
		Analysis: &deploy.Verdict{Result: deploy.ResultFail, Reason: "green error rate 5.00% > 1%",
			Candidate: deploy.Figures{Color: route.Green, Requests: 400, RPS: 40.25, ErrorRate: 0.05, P99: 120 * time.Millisecond},
			Baseline:  deploy.Figures{Color: route.Blue, Requests: 1200, RPS: 120, ErrorRate: 0.001, P99: 45 * time.Millisecond}}}
	out.Reset()
	p.status(st)
	screen := out.String()
	if !strings.HasPrefix(screen, "\x1b[1F\x1b[J") {
		t.Errorf("second draw does not erase the 1-line block first: %q", screen)
	}
	for _, want := range []string{
		"web v2 -> green  shifting  step 2/3  next in 12s",
		"blue   v1               75%     120.0    0.10%     45ms",
		"green  v2               25%      40.2    5.00%    120ms",
		"verdict fail: green error rate 5.00% > 1%",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("display lacks %q:\n%s", want, screen)
		}
	}
	drawn := p.drawn
	out.Reset()
	p.event(deploy.Event{Time: t0, Type: "decision", Message: "rolling back", Actor: "controller"})
	if want := fmt.Sprintf("\x1b[%dF\x1b[J10:00:00  decision    rolling back\n", drawn); !strings.HasPrefix(out.String(), want) {
		t.Errorf("event not printed above a redrawn block:\n%q\nwant prefix %q", out.String(), want)
	}
	out.Reset()
	p.done(deploy.Deployment{Service: "web", Version: "v2", Outcome: deploy.OutcomeRolledBack, Reason: "error rate"})
	if got, want := out.String(), fmt.Sprintf("\x1b[%dF\x1b[Jweb v2: rolled back: error rate\n", drawn); got != want {
		t.Errorf("done = %q, want %q", got, want)
	}
}

func TestFitKeepsLinesWithinWidth(t *testing.T) {
	if got := fit("abcdefghij", 6); got != "abcd…" {
		t.Errorf("fit = %q", got)
	}
	if got := fit("abc", 6); got != "abc" {
		t.Errorf("fit = %q", got)
	}
}
