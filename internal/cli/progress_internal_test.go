package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
)

// Only step events carry a meaningful weight: after a promotion the
// candidate's share is 0 and printing it would read as "nothing served".
func TestEventLineWeightOnlyOnSteps(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	step := eventLine(deploy.Event{Time: at, Type: "step", Weight: 10, Message: "10% of traffic on green"}, time.UTC)
	if !strings.Contains(step, "weight 10%") {
		t.Errorf("step line lacks its weight: %q", step)
	}
	promoted := eventLine(deploy.Event{Time: at, Type: "promoted", Weight: 0, Message: "green v2 is live"}, time.UTC)
	if strings.Contains(promoted, "weight") {
		t.Errorf("promoted line shows a weight: %q", promoted)
	}
}

// A verdict every analysis interval would flood a CI log; only changes of
// result show, and each new step shows its first verdict again.
func TestVerdictFilter(t *testing.T) {
	v := func(r deploy.Result) deploy.Event {
		return deploy.Event{Type: "verdict", Verdict: &deploy.Verdict{Result: r}}
	}
	var f verdictFilter
	seq := []struct {
		ev   deploy.Event
		show bool
	}{
		{v(deploy.ResultInconclusive), true},
		{v(deploy.ResultInconclusive), false},
		{v(deploy.ResultInconclusive), false},
		{v(deploy.ResultPass), true},
		{v(deploy.ResultPass), false},
		{deploy.Event{Type: "decision"}, true},
		{deploy.Event{Type: "step"}, true},
		{v(deploy.ResultPass), true},
		{v(deploy.ResultFail), true},
	}
	for i, c := range seq {
		if got := f.show(c.ev); got != c.show {
			t.Errorf("event %d (%s %v): show = %v, want %v", i, c.ev.Type, c.ev.Verdict, got, c.show)
		}
	}
}
