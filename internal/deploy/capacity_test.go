package deploy

import (
	"strings"
	"testing"
	"time"
)

// A step that passed does not lead to the next one while the candidate has
// fewer healthy instances than live; past the progress deadline the
// deployment rolls back, saying why.
func TestStepHeldUntilCandidateHasLiveCapacity(t *testing.T) {
	passed := func(st State, at time.Time) State {
		st.Run.Verdict = &Verdict{Result: ResultPass, Reason: "within limits", At: at}
		st.Run.NextAnalysis = at.Add(time.Hour) // no new analysis in this tick
		return st
	}
	tick := func(st State, at time.Time, cand, live int) (State, []Action) {
		ev := Observation{Kind: ObsTick, Now: at, Actor: ActorController}
		ev.Health[st.Run.Candidate.Color&1] = PoolHealth{Healthy: cand, Total: live}
		ev.Health[st.Live.Color&1] = PoolHealth{Healthy: live, Total: live}
		return Transition(st, ev)
	}
	st := fixtures()["shifting"]
	over := st.Run.StepUntil.Add(time.Second)
	st = passed(st, over)

	held, acts := tick(st, over, 1, 2)
	if held.Run.Step != 0 || held.Weight != 10 || held.Phase != PhaseShifting {
		t.Fatalf("green with 1 of blue's 2 instances went on: step %d, weight %g, phase %s", held.Run.Step, held.Weight, held.Phase)
	}
	said := false
	for _, a := range acts {
		said = said || (a.Kind == ActEmit && a.Event != nil && strings.Contains(a.Event.Message, "holding: candidate green v2 has 1 healthy instances"))
	}
	if !said {
		t.Fatalf("the hold is not on the event stream: %+v", acts)
	}
	next, _ := tick(st, over, 2, 2)
	if next.Run.Step != 1 || next.Weight != 50 {
		t.Fatalf("green at full capacity was held: step %d, weight %g", next.Run.Step, next.Weight)
	}
	late := st.Run.Deadline.Add(time.Second)
	gone, _ := tick(passed(st, late), late, 1, 2)
	if gone.Phase != PhaseRollingBack || !strings.Contains(gone.Run.Record.Reason, "candidate green v2 has 1 healthy instances, live blue v1 has 2") {
		t.Fatalf("past the deadline: phase %s, reason %q", gone.Phase, gone.Run.Record.Reason)
	}
}
