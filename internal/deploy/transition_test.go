package deploy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/route"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var testPolicy = Policy{Interval: time.Second, MaxErrorRate: 0.01, MaxP99Latency: time.Second, MinRequests: 50,
	ProgressDeadline: 10 * time.Minute, KeepPrevious: time.Hour, QuietPeriod: 10 * time.Second}

// fixtures: one state per phase (idle twice: empty and with a kept pool),
// and the states of the release hook jobs (pre_provision before the
// candidate starts, post_promote after a promotion, post_retire after the
// kept pool was retired).
func fixtures() map[string]State {
	base := State{Schema: StateSchema, Service: "web", Policy: testPolicy}
	run := func(step int) *Run {
		r := &Run{Record: Deployment{ID: "d2", Service: "web", Version: "v2", Color: route.Green, FromVersion: "v1", Outcome: OutcomeRunning, StartedAt: t0},
			Candidate: PoolRef{Color: route.Green, Version: "v2"}, Steps: []Step{{Weight: 10, Pause: 30 * time.Second}, {Weight: 50, Pause: 30 * time.Second}}, Step: step}
		if step >= 0 {
			r.StepStarted, r.StepUntil, r.Deadline, r.NextAnalysis = t0, t0.Add(30*time.Second), t0.Add(630*time.Second), t0.Add(time.Second)
		}
		return r
	}
	live := &PoolRef{Color: route.Blue, Version: "v1"}
	out := map[string]State{}
	s := base
	s.Phase = PhaseIdle
	out["idle"] = s
	s = base
	s.Phase, s.Live, s.Previous = PhaseIdle, &PoolRef{Color: route.Green, Version: "v2"}, &PreviousRef{Color: route.Blue, Version: "v1", Until: t0.Add(time.Hour)}
	out["idle-kept"] = s
	s = base
	s.Phase, s.Live, s.Run, s.Job, s.JobSeq = PhaseProvisioning, live, run(-1), &Job{Seq: 1, Kind: JobStart, Color: route.Green, Version: "v2"}, 1
	out["provisioning"] = s
	s = base
	s.Phase, s.Live, s.Run, s.Job, s.JobSeq = PhaseProvisioning, live, run(-1), &Job{Seq: 1, Kind: JobPreProvision, Color: route.Green, Version: "v2", Deployment: "d2"}, 1
	out["pre_provisioning"] = s
	s = base
	s.Phase, s.Live, s.Run, s.Job, s.JobSeq = PhaseVerifying, live, run(-1), &Job{Seq: 2, Kind: JobPreTraffic, Color: route.Green, Version: "v2"}, 2
	out["verifying"] = s
	s = out["idle-kept"]
	s.Run, s.Job, s.JobSeq, s.Promotion = run(-1), &Job{Seq: 4, Kind: JobPostPromote, Color: route.Green, Version: "v2", Deployment: "d2"}, 4, "d2"
	s.Run.Record.Outcome, s.Run.Record.EndedAt = OutcomePromoted, t0
	out["post_promote"] = s
	s = base
	s.Phase, s.Live, s.Promotion, s.JobSeq = PhaseIdle, &PoolRef{Color: route.Green, Version: "v2"}, "d2", 6
	s.Job = &Job{Seq: 6, Kind: JobPostRetire, Color: route.Green, Version: "v2", Deployment: "d2", Retired: &PoolRef{Color: route.Blue, Version: "v1"}}
	out["post_retire"] = s
	s = base
	s.Phase, s.Live, s.Run, s.Weight, s.JobSeq = PhaseShifting, live, run(0), 10, 2
	out["shifting"] = s
	s = out["shifting"]
	s.Phase, s.Run = PhasePaused, run(0)
	s.Run.PausedAt = t0.Add(500 * time.Millisecond)
	out["paused"] = s
	s = base
	s.Phase, s.Live, s.Run, s.Job, s.JobSeq = PhaseRollingBack, live, run(0), &Job{Seq: 3, Kind: JobRollback, Color: route.Green, Version: "v2"}, 3
	s.Run.Record.Outcome = OutcomeRolledBack
	out["rolling_back"] = s
	return out
}

// obsFor builds the observation of a kind, at t0+1s, for a state.
func obsFor(kind ObsKind, st State) Observation {
	ev := Observation{Kind: kind, Now: t0.Add(time.Second), Actor: ActorUser, Health: [2]PoolHealth{{2, 2}, {2, 2}}}
	switch kind {
	case ObsDeploy:
		ev.ID, ev.Version, ev.Steps = "d3", "v3", []Step{{Weight: 10, Pause: time.Minute}}
	case ObsPoolFailed:
		ev.Color, ev.Version, ev.Err, ev.Actor = route.Green, "v2", "crash loop", ActorController
	case ObsJobDone:
		if st.Job != nil {
			ev.Job = st.Job.Seq
		}
		ev.Actor = ""
	case ObsTick, ObsRestart:
		ev.Actor = ""
	}
	return ev
}

// want is the expected outcome of one (state, observation) pair: an
// admission error, or the next phase, the split sent to the router
// ("" = none) and the job started ("" = none).
type want struct {
	err   error
	phase Phase
	split string
	job   JobKind
}

func TestTransitionTable(t *testing.T) {
	none := func(p Phase) want { return want{phase: p} }
	busy, nodep := want{err: ErrBusy}, want{err: ErrNoDeployment}
	table := map[string]map[ObsKind]want{
		"idle": {
			ObsDeploy: {phase: PhaseProvisioning, job: JobStart}, ObsPromote: nodep, ObsPause: nodep, ObsResume: nodep,
			ObsAbort: nodep, ObsRollback: {err: ErrNoPrevious}, ObsPoolFailed: none(PhaseIdle), ObsJobDone: none(PhaseIdle),
			ObsTick: none(PhaseIdle), ObsRestart: none(PhaseIdle),
		},
		"idle-kept": {
			ObsDeploy: {phase: PhaseProvisioning, job: JobStart}, ObsPromote: nodep, ObsPause: nodep, ObsResume: nodep,
			ObsAbort: nodep, ObsRollback: {phase: PhaseIdle, split: "blue:0", job: JobRetire}, ObsPoolFailed: none(PhaseIdle),
			ObsJobDone: none(PhaseIdle), ObsTick: none(PhaseIdle), ObsRestart: {phase: PhaseIdle, split: "green:0"},
		},
		"provisioning": {
			ObsDeploy: busy, ObsPromote: busy, ObsPause: busy, ObsResume: nodep,
			ObsAbort: {phase: PhaseRollingBack, job: JobStop}, ObsRollback: {phase: PhaseRollingBack, job: JobStop},
			ObsPoolFailed: {phase: PhaseRollingBack, job: JobStop}, ObsJobDone: {phase: PhaseVerifying, job: JobPreTraffic},
			ObsTick: none(PhaseProvisioning), ObsRestart: {phase: PhaseProvisioning, split: "blue:0", job: JobStart},
		},
		"pre_provisioning": {
			ObsDeploy: busy, ObsPromote: busy, ObsPause: busy, ObsResume: nodep,
			ObsAbort: none(PhaseIdle), ObsRollback: none(PhaseIdle), ObsPoolFailed: none(PhaseIdle),
			ObsJobDone: {phase: PhaseProvisioning, job: JobStart}, ObsTick: none(PhaseProvisioning),
			ObsRestart: {phase: PhaseProvisioning, split: "blue:0", job: JobPreProvision},
		},
		"post_promote": {
			ObsDeploy: busy, ObsPromote: nodep, ObsPause: nodep, ObsResume: nodep, ObsAbort: nodep,
			ObsRollback: {phase: PhaseIdle, split: "blue:0", job: JobRetire}, ObsPoolFailed: none(PhaseIdle), ObsJobDone: none(PhaseIdle),
			ObsTick: none(PhaseIdle), ObsRestart: {phase: PhaseIdle, split: "green:0", job: JobPostPromote},
		},
		"post_retire": {
			ObsDeploy: busy, ObsPromote: nodep, ObsPause: nodep, ObsResume: nodep, ObsAbort: nodep,
			ObsRollback: {err: ErrNoPrevious}, ObsPoolFailed: none(PhaseIdle), ObsJobDone: none(PhaseIdle),
			ObsTick: none(PhaseIdle), ObsRestart: {phase: PhaseIdle, split: "green:0", job: JobPostRetire},
		},
		"verifying": {
			ObsDeploy: busy, ObsPromote: busy, ObsPause: busy, ObsResume: nodep,
			ObsAbort: {phase: PhaseRollingBack, job: JobStop}, ObsRollback: {phase: PhaseRollingBack, job: JobStop},
			ObsPoolFailed: {phase: PhaseRollingBack, job: JobStop}, ObsJobDone: {phase: PhaseShifting, split: "blue:10"},
			ObsTick: none(PhaseVerifying), ObsRestart: {phase: PhaseVerifying, split: "blue:0", job: JobPreTraffic},
		},
		"shifting": {
			ObsDeploy: busy, ObsPromote: {phase: PhaseIdle, split: "green:0", job: JobPostTraffic}, ObsPause: none(PhasePaused), ObsResume: nodep,
			ObsAbort: {phase: PhaseRollingBack, split: "blue:0", job: JobRollback}, ObsRollback: {phase: PhaseRollingBack, split: "blue:0", job: JobRollback},
			ObsPoolFailed: {phase: PhaseRollingBack, split: "blue:0", job: JobRollback}, ObsJobDone: none(PhaseShifting),
			ObsTick: none(PhaseShifting), ObsRestart: {phase: PhaseShifting, split: "blue:10"},
		},
		"paused": {
			ObsDeploy: busy, ObsPromote: {phase: PhaseIdle, split: "green:0", job: JobPostTraffic}, ObsPause: busy, ObsResume: none(PhaseShifting),
			ObsAbort: {phase: PhaseRollingBack, split: "blue:0", job: JobRollback}, ObsRollback: {phase: PhaseRollingBack, split: "blue:0", job: JobRollback},
			ObsPoolFailed: {phase: PhaseRollingBack, split: "blue:0", job: JobRollback}, ObsJobDone: none(PhasePaused),
			ObsTick: none(PhasePaused), ObsRestart: {phase: PhasePaused, split: "blue:10"},
		},
		"rolling_back": {
			ObsDeploy: busy, ObsPromote: busy, ObsPause: busy, ObsResume: nodep, ObsAbort: busy, ObsRollback: busy,
			ObsPoolFailed: none(PhaseRollingBack), ObsJobDone: none(PhaseIdle),
			ObsTick: none(PhaseRollingBack), ObsRestart: {phase: PhaseRollingBack, split: "blue:0", job: JobRollback},
		},
	}
	kinds := []ObsKind{ObsDeploy, ObsPromote, ObsPause, ObsResume, ObsAbort, ObsRollback, ObsPoolFailed, ObsJobDone, ObsTick, ObsRestart}
	for name, st := range fixtures() {
		for _, kind := range kinds {
			w, ok := table[name][kind]
			if !ok {
				t.Errorf("no expectation for %s x %s", name, kind)
				continue
			}
			t.Run(name+"/"+string(kind), func(t *testing.T) {
				ev := obsFor(kind, st)
				if err := Admit(st, ev); w.err != nil || err != nil {
					if !errors.Is(err, w.err) {
						t.Fatalf("Admit = %v, want %v", err, w.err)
					}
					return
				}
				before := fmt.Sprintf("%+v", st.Run)
				next, acts := Transition(st, ev)
				if next.Phase != w.phase {
					t.Errorf("phase = %s, want %s", next.Phase, w.phase)
				}
				var split string
				var job JobKind
				for _, a := range acts {
					switch a.Kind {
					case ActSetSplit:
						split = fmt.Sprintf("%s:%g", a.Live, a.Weight)
					case ActRunJob:
						job = a.Job.Kind
						if next.Job == nil || *next.Job != *a.Job || a.Job.Seq != st.JobSeq+1 {
							t.Errorf("job action %+v does not match state job %+v (seq was %d)", a.Job, next.Job, st.JobSeq)
						}
					}
				}
				if split != w.split || job != w.job {
					t.Errorf("split %q job %q, want split %q job %q", split, job, w.split, w.job)
				}
				if after := fmt.Sprintf("%+v", st.Run); after != before {
					t.Error("Transition changed its input state")
				}
				if next.Phase != PhaseIdle && next.Run == nil {
					t.Error("active phase without a run")
				}
			})
		}
	}
}

// window returns cumulative counts of n requests with errs errors at lat.
func window(n, errs uint64, lat time.Duration) metrics.Counts {
	var r metrics.Recorder
	for i := range n {
		s := 200
		if i < errs {
			s = 500
		}
		r.Start()
		r.Done(s, lat, false)
	}
	return r.Snapshot()
}

func TestTransitionAnalysisDecisions(t *testing.T) {
	ms := time.Millisecond
	shifting := fixtures()["shifting"]
	at := func(d time.Duration, green, blue metrics.Counts) Observation {
		return Observation{Kind: ObsTick, Now: t0.Add(d), Counts: [2]metrics.Counts{route.Blue: blue, route.Green: green}}
	}
	cases := []struct {
		name    string
		st      State
		ev      Observation
		phase   Phase
		step    int
		split   string
		reason  string
		outcome Outcome
	}{
		{"bad release fails", shifting, at(3*time.Second, window(150, 9, 10*ms), window(1350, 5, 10*ms)), PhaseRollingBack, 0, "blue:0", "green error rate", OutcomeRolledBack},
		{"healthy mid-step keeps step", shifting, at(10*time.Second, window(500, 2, 10*ms), window(4500, 20, 10*ms)), PhaseShifting, 0, "", "", OutcomeRunning},
		{"healthy at pause end advances", shifting, at(30*time.Second, window(1500, 7, 10*ms), window(13500, 60, 10*ms)), PhaseShifting, 1, "blue:50", "", OutcomeRunning},
		{"too few requests at pause end waits", shifting, at(30*time.Second, window(20, 0, 10*ms), window(13500, 60, 10*ms)), PhaseShifting, 0, "", "", OutcomeRunning},
		{"inconclusive past the deadline rolls back", shifting, at(631*time.Second, window(20, 0, 10*ms), window(13500, 60, 10*ms)), PhaseRollingBack, 0, "blue:0", "progress deadline", OutcomeRolledBack},
		{"slow release fails", shifting, at(5*time.Second, window(250, 0, 30*ms), window(2250, 0, 10*ms)), PhaseRollingBack, 0, "blue:0", "p99", OutcomeRolledBack},
		{"paused step still fails", fixtures()["paused"], at(3*time.Second, window(150, 9, 10*ms), window(1350, 5, 10*ms)), PhaseRollingBack, 0, "blue:0", "error rate", OutcomeRolledBack},
		{"paused step does not advance", fixtures()["paused"], at(40*time.Second, window(2000, 0, 10*ms), window(18000, 0, 10*ms)), PhasePaused, 0, "", "", OutcomeRunning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next, acts := Transition(tc.st, tc.ev)
			var split string
			for _, a := range acts {
				if a.Kind == ActSetSplit {
					split = fmt.Sprintf("%s:%g", a.Live, a.Weight)
				}
			}
			if next.Phase != tc.phase || next.Run.Step != tc.step || split != tc.split || next.Run.Record.Outcome != tc.outcome {
				t.Fatalf("phase %s step %d split %q outcome %s; want %s %d %q %s", next.Phase, next.Run.Step, split, next.Run.Record.Outcome, tc.phase, tc.step, tc.split, tc.outcome)
			}
			if !strings.Contains(next.Run.Record.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", next.Run.Record.Reason, tc.reason)
			}
			if tc.outcome == OutcomeRolledBack && next.Job.Reason != next.Run.Record.Reason {
				t.Errorf("on_rollback REASON %q differs from the recorded reason", next.Job.Reason)
			}
		})
	}
}

func TestTransitionRetirementAndStaleJobs(t *testing.T) {
	kept := fixtures()["idle-kept"]
	next, _ := Transition(kept, Observation{Kind: ObsTick, Now: t0.Add(59 * time.Minute)})
	if next.Retiring || next.Job != nil {
		t.Fatal("retiring before keep_previous ended")
	}
	next, _ = Transition(kept, Observation{Kind: ObsTick, Now: t0.Add(time.Hour)})
	if !next.Retiring || next.Job == nil || next.Job.Kind != JobRetire || next.Job.Color != route.Blue {
		t.Fatalf("no retirement after keep_previous: %+v", next)
	}
	if err := Admit(next, Observation{Kind: ObsRollback}); !errors.Is(err, ErrNoPrevious) {
		t.Errorf("rollback while retiring: %v", err)
	}
	done, _ := Transition(next, Observation{Kind: ObsJobDone, Job: next.Job.Seq, Now: t0.Add(time.Hour + time.Minute)})
	if done.Previous != nil || done.Retiring || done.Job != nil {
		t.Errorf("after retirement: %+v", done)
	}
	failed, _ := Transition(next, Observation{Kind: ObsJobDone, Job: next.Job.Seq, Err: "stop blue: boom", Now: t0.Add(time.Hour + time.Minute)})
	if failed.Previous == nil || failed.Retiring || !failed.Previous.Until.After(t0.Add(time.Hour+time.Minute)) {
		t.Errorf("failed retirement not retried later: %+v", failed.Previous)
	}
	prov := fixtures()["provisioning"]
	if stale, acts := Transition(prov, Observation{Kind: ObsJobDone, Job: 0, Now: t0}); stale.Phase != PhaseProvisioning || len(acts) != 0 {
		t.Errorf("a superseded job's result moved the state: %s %v", stale.Phase, acts)
	}
}

func TestTransitionResumeExtendsDeadlines(t *testing.T) {
	paused := fixtures()["paused"]
	next, _ := Transition(paused, Observation{Kind: ObsResume, Now: paused.Run.PausedAt.Add(time.Minute), Actor: ActorUser})
	if want := paused.Run.StepUntil.Add(time.Minute); !next.Run.StepUntil.Equal(want) || !next.Run.Deadline.Equal(paused.Run.Deadline.Add(time.Minute)) {
		t.Errorf("step until %v, want %v", next.Run.StepUntil, want)
	}
}

func TestStrategies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps int
		last  Step
	}{{StrategyAllAtOnce, 0, Step{}}, {StrategyCanary10, 1, Step{Weight: 10, Pause: 5 * time.Minute}}, {StrategyLinear10, 10, Step{Weight: 100, Pause: time.Minute}}} {
		steps, err := Steps(tc.name, testService().Steps)
		if err != nil || len(steps) != tc.steps || (tc.steps > 0 && steps[len(steps)-1] != tc.last) {
			t.Errorf("%s: %v %v", tc.name, steps, err)
		}
	}
	if steps, _ := Steps("", testService().Steps); len(steps) != 2 || steps[1].Weight != 50 {
		t.Errorf("configured steps: %v", steps)
	}
	if _, err := Steps("yolo", testService().Steps); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown strategy: %v", err)
	}
}

// A demoted pool that could not be retired after an instant rollback still
// runs: it is kept, and retired again after another quiet period.
func TestFailedRetireAfterRollbackKeepsPool(t *testing.T) {
	st := fixtures()["idle-kept"]
	back, _ := Transition(st, obsFor(ObsRollback, st))
	if back.Job == nil || back.Job.Kind != JobRetire || back.Job.Color != route.Green {
		t.Fatalf("after the rollback: job %+v", back.Job)
	}
	now := t0.Add(time.Minute)
	done, _ := Transition(back, Observation{Kind: ObsJobDone, Job: back.Job.Seq, Err: "not draining green v2: live blue has 0 of 2 instances healthy", Now: now})
	if done.Run != nil || done.Previous == nil || done.Previous.Color != route.Green || done.Previous.Version != "v2" || done.Retiring {
		t.Fatalf("after the failed retirement: run %v previous %+v retiring %v", done.Run, done.Previous, done.Retiring)
	}
	if !done.Previous.Until.Equal(now.Add(testPolicy.QuietPeriod)) {
		t.Errorf("retried at %v, want after the quiet period", done.Previous.Until)
	}
}

// Every restart re-applies the preview colour, like the split: the router
// lost it with the daemon.
func TestRestartSetsPreview(t *testing.T) {
	for name, want := range map[string]route.Color{"idle": route.Blue, "idle-kept": route.Blue, "provisioning": route.Green, "shifting": route.Green, "rolling_back": route.Green} {
		st := fixtures()[name]
		_, acts := Transition(st, obsFor(ObsRestart, st))
		var got []route.Color
		for _, a := range acts {
			if a.Kind == ActSetPreview {
				got = append(got, a.Color)
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: restart sets preview %v, want [%s]", name, got, want)
		}
	}
}
