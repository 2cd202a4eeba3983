package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// allHooks says every release hook list holds hooks.
var allHooks = HookSet{PreProvision: true, PostPromote: true, PostRetire: true}

// at builds an observation of kind at t0+d with the release hooks set.
func at(kind ObsKind, d time.Duration, st State, hooks HookSet) Observation {
	ev := obsFor(kind, st)
	ev.Now, ev.Hooks = t0.Add(d), hooks
	return ev
}

// jobDone is the observation of the state's job finishing, failed when err is set.
func jobDone(st State, err, output string) Observation {
	ev := at(ObsJobDone, 2*time.Second, st, allHooks)
	ev.Err, ev.Output = err, output
	return ev
}

// retiring is idle-kept once keep_previous is over: blue v1, kept since
// deployment d2 promoted green v2, is being retired.
func retiring() State {
	st := fixtures()["idle-kept"]
	st.Previous.Until = t0
	st.Promotion, st.Retiring, st.JobSeq = "d2", true, 5
	st.Job = &Job{Seq: 5, Kind: JobRetire, Color: route.Blue, Version: "v1"}
	return st
}

// TestTransitionReleaseHooks: the jobs of pre_provision, post_promote and
// post_retire, where they run, and what their results do.
func TestTransitionReleaseHooks(t *testing.T) {
	prov := fixtures()["pre_provisioning"]
	kept := fixtures()["idle-kept"]
	keptProv, _ := Transition(kept, at(ObsDeploy, 0, kept, allHooks)) // v3 to blue, where v1 is kept
	promoted := fixtures()["post_promote"]
	promoted.Job = &Job{Seq: 4, Kind: JobPostTraffic, Color: route.Green, Version: "v2", Deployment: "d2"}
	rolledBack, _ := Transition(kept, at(ObsRollback, 0, kept, allHooks))
	retiringState := retiring()
	retiringProv, _ := Transition(retiringState, at(ObsDeploy, 0, retiringState, allHooks))

	cases := []struct {
		name string
		st   State
		ev   Observation
		// what the next state holds: its phase, job ("" none), whether a
		// run is left, and the kept previous pool ("" none)
		phase    Phase
		job      JobKind
		run      bool
		previous string
		// outcome of the record saved ("" none saved), a text its events
		// hold, and the deployment an appended event goes to ("" none)
		outcome  Outcome
		says     string
		appendTo string
		check    func(t *testing.T, next State, acts []Action)
	}{
		{name: "deploy with pre_provision hooks runs them first", st: fixtures()["idle"], ev: at(ObsDeploy, 0, fixtures()["idle"], allHooks),
			phase: PhaseProvisioning, job: JobPreProvision, run: true, outcome: OutcomeRunning, says: "deploying v3 to blue"},
		{name: "deploy without pre_provision hooks starts at once", st: fixtures()["idle"], ev: at(ObsDeploy, 0, fixtures()["idle"], HookSet{}),
			phase: PhaseProvisioning, job: JobStart, run: true, outcome: OutcomeRunning},
		{name: "the kept pool stays kept while pre_provision runs", st: kept, ev: at(ObsDeploy, 0, kept, allHooks),
			phase: PhaseProvisioning, job: JobPreProvision, run: true, previous: "blue v1", outcome: OutcomeRunning},
		{name: "passed pre_provision starts the candidate in place of the kept pool", st: keptProv, ev: jobDone(keptProv, "", ""),
			phase: PhaseProvisioning, job: JobStart, run: true, outcome: OutcomeRunning, says: "draining kept previous blue v1 before starting v3",
			check: func(t *testing.T, next State, _ []Action) {
				if next.Job.Replaces != "v1" {
					t.Errorf("start job replaces %q, want v1", next.Job.Replaces)
				}
			}},
		{name: "failed pre_provision fails with nothing started", st: prov, ev: jobDone(prov, `pre_provision hook 1 of 1 ("./migrate") failed after 5ms: exit status 1`, "column exists\n"),
			phase: PhaseIdle, outcome: OutcomeFailed, says: "nothing was started, green left as it was",
			check: func(t *testing.T, next State, acts []Action) {
				rec := lastRecord(acts)
				if !strings.Contains(rec.Reason, `pre_provision hook 1 of 1 ("./migrate") failed`) || rec.EndedAt.IsZero() {
					t.Errorf("record: reason %q ended %v", rec.Reason, rec.EndedAt)
				}
				if i := slices.IndexFunc(rec.Events, func(e Event) bool { return e.Type == EventHook && e.Output == "column exists\n" }); i < 0 {
					t.Errorf("no hook event with the output in %+v", rec.Events)
				}
				if slices.ContainsFunc(acts, func(a Action) bool { return a.Kind == ActSetSplit }) {
					t.Error("a failed pre_provision moved the split")
				}
				if next.Live == nil || next.Live.Version != "v1" {
					t.Errorf("live %+v, want blue v1", next.Live)
				}
			}},
		{name: "failed pre_provision leaves the kept pool kept", st: keptProv, ev: jobDone(keptProv, "pre_provision hook 1 of 1 failed", ""),
			phase: PhaseIdle, previous: "blue v1", outcome: OutcomeFailed},
		{name: "failed pre_provision resumes the retirement it interrupted", st: retiringProv, ev: jobDone(retiringProv, "pre_provision hook 1 of 1 failed", ""),
			phase: PhaseIdle, job: JobRetire, previous: "blue v1", outcome: OutcomeFailed},
		{name: "abort while pre_provision runs stops nothing", st: prov, ev: at(ObsAbort, time.Second, prov, allHooks),
			phase: PhaseIdle, outcome: OutcomeAborted, says: "pre_provision hooks cancelled: aborted by user"},
		{name: "post_traffic is followed by post_promote", st: promoted, ev: jobDone(promoted, "", ""),
			phase: PhaseIdle, job: JobPostPromote, run: true, previous: "blue v1", outcome: OutcomePromoted, says: "post_traffic hooks passed"},
		{name: "without post_promote hooks the run ends after post_traffic", st: promoted, ev: func() Observation { ev := jobDone(promoted, "", ""); ev.Hooks = HookSet{}; return ev }(),
			phase: PhaseIdle, previous: "blue v1", outcome: OutcomePromoted},
		{name: "failed post_promote keeps the promotion", st: fixtures()["post_promote"], ev: jobDone(fixtures()["post_promote"], `post_promote hook 1 of 1 ("./tag") failed after 1s: exit status 2`, "boom"),
			phase: PhaseIdle, previous: "blue v1", outcome: OutcomePromoted, says: "the promotion stands",
			check: func(t *testing.T, next State, _ []Action) {
				if next.Live.Color != route.Green || next.Live.Version != "v2" || next.Weight != 0 {
					t.Errorf("live %+v weight %v, want green v2 at 100%%", next.Live, next.Weight)
				}
			}},
		{name: "retirement of the kept pool is followed by post_retire", st: retiring(), ev: jobDone(retiring(), "", ""),
			phase: PhaseIdle, job: JobPostRetire,
			check: func(t *testing.T, next State, _ []Action) {
				j := next.Job
				if j.Deployment != "d2" || j.Color != route.Green || j.Version != "v2" || j.Retired == nil || *j.Retired != (PoolRef{Color: route.Blue, Version: "v1"}) {
					t.Errorf("post_retire job %+v (retired %+v), want d2's, live green v2, retired blue v1", j, j.Retired)
				}
			}},
		{name: "without post_retire hooks a retirement ends there", st: retiring(), ev: func() Observation { ev := jobDone(retiring(), "", ""); ev.Hooks = HookSet{}; return ev }(),
			phase: PhaseIdle},
		{name: "a failed retirement runs no post_retire", st: retiring(), ev: jobDone(retiring(), "stop blue: boom", ""),
			phase: PhaseIdle, previous: "blue v1"},
		{name: "retiring the pool a rollback demoted runs no post_retire", st: rolledBack, ev: jobDone(rolledBack, "", ""),
			phase: PhaseIdle, outcome: OutcomeRolledBack, says: "green v2 drained, quiet and stopped"},
		{name: "post_retire's result goes to the promoting deployment's record", st: fixtures()["post_retire"], ev: jobDone(fixtures()["post_retire"], "", ""),
			phase: PhaseIdle, appendTo: "d2", says: "post_retire hooks passed"},
		{name: "a failed post_retire is recorded with its output", st: fixtures()["post_retire"], ev: jobDone(fixtures()["post_retire"], "post_retire hook 1 of 1 failed", "lock timeout"),
			phase: PhaseIdle, appendTo: "d2", says: "the previous pool stays retired",
			check: func(t *testing.T, _ State, acts []Action) {
				if a := acts[slices.IndexFunc(acts, func(a Action) bool { return a.Kind == ActAppend })]; a.Event.Output != "lock timeout" || a.Event.Type != EventHook {
					t.Errorf("appended event %+v", a.Event)
				}
			}},
		{name: "a failed on_rollback hook's output is recorded", st: fixtures()["rolling_back"],
			ev:    jobDone(fixtures()["rolling_back"], `on_rollback hook 1 of 1 ("./page") failed after 1s: exit status 1`, "pager unreachable"),
			phase: PhaseIdle, outcome: OutcomeRolledBack, says: "cleaning up green v2",
			check: func(t *testing.T, _ State, acts []Action) {
				rec := lastRecord(acts)
				if i := slices.IndexFunc(rec.Events, func(e Event) bool { return e.Type == EventHook && e.Output == "pager unreachable" }); i < 0 {
					t.Errorf("no hook event with the output in %+v", rec.Events)
				}
			}},
		{name: "promotion names the deployment post_retire will run for", st: fixtures()["shifting"], ev: at(ObsPromote, time.Second, fixtures()["shifting"], allHooks),
			phase: PhaseIdle, job: JobPostTraffic, run: true, previous: "blue v1", outcome: OutcomePromoted,
			check: func(t *testing.T, next State, _ []Action) {
				if next.Promotion != "d2" {
					t.Errorf("promotion %q, want d2", next.Promotion)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := Admit(tc.st, tc.ev); err != nil {
				t.Fatalf("Admit: %v", err)
			}
			next, acts := Transition(tc.st, tc.ev)
			var job JobKind
			if next.Job != nil {
				job = next.Job.Kind
			}
			prev := ""
			if p := next.Previous; p != nil {
				prev = fmt.Sprintf("%s %s", p.Color, p.Version)
			}
			if next.Phase != tc.phase || job != tc.job || (next.Run != nil) != tc.run || prev != tc.previous {
				t.Errorf("phase %s job %q run %v previous %q; want %s %q %v %q", next.Phase, job, next.Run != nil, prev, tc.phase, tc.job, tc.run, tc.previous)
			}
			rec := lastRecord(acts)
			switch {
			case tc.outcome == "" && rec != nil:
				t.Errorf("record %s saved, want none", rec.Outcome)
			case tc.outcome != "" && (rec == nil || rec.Outcome != tc.outcome):
				t.Errorf("record %+v, want outcome %s", rec, tc.outcome)
			}
			var said bool
			var appended string
			for _, a := range acts {
				if a.Kind == ActEmit {
					said = said || strings.Contains(a.Event.Message, tc.says)
				}
				if a.Kind == ActAppend {
					appended = a.Event.Deployment
				}
			}
			if !said {
				t.Errorf("no event says %q", tc.says)
			}
			if appended != tc.appendTo {
				t.Errorf("event appended to %q, want %q", appended, tc.appendTo)
			}
			if tc.check != nil {
				tc.check(t, next, acts)
			}
		})
	}
}

// lastRecord is the last history record the actions save, or nil.
func lastRecord(acts []Action) *Deployment {
	for i := len(acts) - 1; i >= 0; i-- {
		if acts[i].Kind == ActRecord {
			return acts[i].Deployment
		}
	}
	return nil
}

// Each hook that passes advances the job (persisted, so a restart resumes
// after it) and records its output; a stale or repeated report does not.
func TestTransitionHookProgress(t *testing.T) {
	prov := fixtures()["pre_provisioning"]
	done := func(st State, seq uint64, hook int) Observation {
		ev := at(ObsHookDone, 2*time.Second, st, allHooks)
		ev.Job, ev.Hook, ev.Detail, ev.Output = seq, hook, fmt.Sprintf(`pre_provision hook %d of 3 ("./m") passed in 1s`, hook), "applied 0003\n"
		return ev
	}
	next, acts := Transition(prov, done(prov, 1, 1))
	if next.Job == nil || next.Job.Kind != JobPreProvision || next.Job.Seq != 1 || next.Job.Hook != 1 {
		t.Fatalf("after hook 1 passed: job %+v", next.Job)
	}
	rec := lastRecord(acts)
	if rec == nil || rec.Events[len(rec.Events)-1].Output != "applied 0003\n" || rec.Events[len(rec.Events)-1].Message != `pre_provision hook 1 of 3 ("./m") passed in 1s` {
		t.Fatalf("hook 1's event not recorded: %+v", rec)
	}
	if slices.ContainsFunc(acts, func(a Action) bool { return a.Kind == ActRunJob }) {
		t.Error("a hook's progress restarted the job")
	}
	for name, ev := range map[string]Observation{"stale job": done(next, 0, 2), "repeated hook": done(next, 1, 1)} {
		if again, acts := Transition(next, ev); len(acts) != 0 || again.Job.Hook != 1 {
			t.Errorf("%s: moved the state to hook %d with %d actions", name, again.Job.Hook, len(acts))
		}
	}
	restarted, acts := Transition(next, at(ObsRestart, time.Minute, next, allHooks))
	i := slices.IndexFunc(acts, func(a Action) bool { return a.Kind == ActRunJob })
	if i < 0 || acts[i].Job.Kind != JobPreProvision || acts[i].Job.Hook != 1 || restarted.Job.Seq == next.Job.Seq {
		t.Fatalf("restart: %+v, want the pre_provision job again from hook 2 under a new seq", acts)
	}

	// Without a run (post_retire), progress goes to the promoting record.
	pr := fixtures()["post_retire"]
	ev := done(pr, 6, 1)
	_, acts = Transition(pr, ev)
	if i := slices.IndexFunc(acts, func(a Action) bool { return a.Kind == ActAppend }); i < 0 || acts[i].Event.Deployment != "d2" || acts[i].Event.Output != "applied 0003\n" {
		t.Errorf("post_retire progress: %+v", acts)
	}
}

// A deploy waits for, and Admit refuses a deploy during, the post_retire
// hooks: a contract migration is not cut short by the next release.
func TestPostRetireHoldsDeploy(t *testing.T) {
	pr := fixtures()["post_retire"]
	err := Admit(pr, at(ObsDeploy, 0, pr, allHooks))
	if err == nil || !strings.Contains(err.Error(), "post_retire hooks of deployment d2 are running") {
		t.Fatalf("deploy during post_retire: %v", err)
	}
	if !finishing(pr) || finishing(fixtures()["idle-kept"]) || finishing(fixtures()["shifting"]) {
		t.Error("finishing does not tell post_retire from an idle or shifting service")
	}
}
