package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

// record returns the deployment record the actions save last.
func recordOf(t *testing.T, acts []Action) *Deployment {
	t.Helper()
	for i := len(acts) - 1; i >= 0; i-- {
		if acts[i].Kind == ActRecord {
			return acts[i].Deployment
		}
	}
	t.Fatalf("no record among %+v", acts)
	return nil
}

// The preflight runs first; its failure fails the deployment with nothing
// started and the report in history, its pass goes on to the start (or
// to pre_provision).
func TestPreflightJobDecides(t *testing.T) {
	fx := fixtures()
	idle := fx["idle-kept"]
	deploy := Observation{Kind: ObsDeploy, Now: t0, Actor: ActorUser, ID: "d3", Version: "v3",
		Hooks: HookSet{Preflight: true, PreProvision: true}}
	st, _ := Transition(idle, deploy)
	if st.Phase != PhaseProvisioning || st.Job == nil || st.Job.Kind != JobPreflight || st.Job.Color != route.Blue {
		t.Fatalf("after deploy: phase %s job %+v, want the preflight for blue", st.Phase, st.Job)
	}

	failed, acts := Transition(st, Observation{Kind: ObsJobDone, Now: t0.Add(time.Second), Job: st.Job.Seq,
		Err: "preflight failed: 1 finding (database headroom)", Output: "  max_connections 200\n..."})
	rec := recordOf(t, acts)
	if rec.Outcome != OutcomeFailed || !strings.Contains(rec.Reason, "database headroom") {
		t.Fatalf("record %s %q", rec.Outcome, rec.Reason)
	}
	var decision *Event
	for i, ev := range rec.Events {
		if ev.Type == EventDecision {
			decision = &rec.Events[i]
		}
	}
	if decision == nil || decision.Actor != ActorController || !strings.Contains(decision.Output, "max_connections 200") {
		t.Fatalf("no decision with the report in %+v", rec.Events)
	}
	if failed.Run != nil || failed.Job != nil || failed.Phase != PhaseIdle || failed.Previous == nil || *failed.Live != *idle.Live {
		t.Fatalf("after a failed preflight: %+v (the kept pool and live must stay)", failed)
	}

	passed, _ := Transition(st, Observation{Kind: ObsJobDone, Now: t0.Add(time.Second), Job: st.Job.Seq, Detail: "preflight passed; database: fits\nreport",
		Hooks: HookSet{Preflight: true, PreProvision: true}})
	if passed.Job == nil || passed.Job.Kind != JobPreProvision {
		t.Fatalf("after a passed preflight: job %+v, want pre_provision", passed.Job)
	}
	last := passed.Run.Record.Events[len(passed.Run.Record.Events)-1]
	if last.Type != EventDecision || last.Message != "preflight passed; database: fits" || last.Output != "report" {
		t.Fatalf("passed preflight recorded as %+v", last)
	}
	started, _ := Transition(st, Observation{Kind: ObsJobDone, Now: t0.Add(time.Second), Job: st.Job.Seq, Detail: "preflight passed"})
	if started.Job == nil || started.Job.Kind != JobStart {
		t.Fatalf("without pre_provision: job %+v, want start", started.Job)
	}

	aborted, acts := Transition(st, Observation{Kind: ObsAbort, Now: t0.Add(time.Second), Actor: ActorUser})
	if rec := recordOf(t, acts); rec.Outcome != OutcomeAborted || aborted.Run != nil || aborted.Previous == nil {
		t.Fatalf("abort during the preflight: %s, state %+v", rec.Outcome, aborted)
	}
}

// Database figures ride on every verdict; a sample over the budget
// pauses a shifting deployment (once: paused, it stays paused).
func TestDatabaseOverPausesTheShift(t *testing.T) {
	st := fixtures()["shifting"]
	counts := [2]metrics.Counts{}
	ok := &DatabaseFigures{Connections: 40, Budget: 177, Max: 200, Reason: "database connections 40 of budget 177"}
	tick := Observation{Kind: ObsTick, Now: t0.Add(1500 * time.Millisecond), Counts: counts, Database: ok,
		Health: [2]PoolHealth{{Healthy: 2, Total: 2}, {Healthy: 2, Total: 2}}}
	next, _ := Transition(st, tick)
	if next.Phase != PhaseShifting || next.Run.Verdict == nil || next.Run.Verdict.Database == nil || next.Run.Verdict.Database.Connections != 40 {
		t.Fatalf("under the budget: phase %s verdict %+v", next.Phase, next.Run.Verdict)
	}
	over := &DatabaseFigures{Connections: 180, Budget: 177, Max: 200, Over: true, Reason: "database connections 180 are over the budget of 177"}
	tick.Now, tick.Database = t0.Add(2500*time.Millisecond), over
	paused, _ := Transition(next, tick)
	if paused.Phase != PhasePaused {
		t.Fatalf("over the budget: phase %s, want paused", paused.Phase)
	}
	last := paused.Run.Record.Events[len(paused.Run.Record.Events)-1]
	if last.Type != EventDecision || !strings.Contains(last.Message, "over the budget of 177") || last.Verdict == nil || last.Verdict.Database.Connections != 180 {
		t.Fatalf("pause recorded as %+v", last)
	}
	tick.Now = t0.Add(3500 * time.Millisecond)
	again, _ := Transition(paused, tick)
	if again.Phase != PhasePaused || len(again.Run.Record.Events) != len(paused.Run.Record.Events) {
		t.Fatalf("a paused deployment paused again: %s, %d events", again.Phase, len(again.Run.Record.Events))
	}
}
