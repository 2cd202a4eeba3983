package deploy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

func TestHealthyCanaryPromoted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		d := h.deploy("v2", "")
		took := h.waitPhase(PhaseIdle, 5*time.Minute)
		st := h.c.Status()
		if st.Live.Color != route.Green || st.Live.Version != "v2" || st.Weights["green"] != 100 {
			t.Fatalf("status after promotion: %+v", st)
		}
		if st.Previous == nil || st.Previous.Version != "v1" || !st.Previous.Until.After(time.Now().Add(59*time.Minute)) {
			t.Fatalf("previous pool not kept warm: %+v", st.Previous)
		}
		if took < 60*time.Second || took > 70*time.Second {
			t.Errorf("two 30 s steps took %v", took)
		}
		if got, want := h.router.splitLog(), []string{"blue:0", "blue:10", "blue:50", "green:0"}; !slices.Equal(got, want) {
			t.Errorf("splits = %v, want %v", got, want)
		}
		hist := h.history()
		if hist[0].ID != d.ID || hist[0].Outcome != OutcomePromoted || hist[0].FromVersion != "v1" {
			t.Fatalf("history[0] = %+v", hist[0])
		}
		var decisions int
		for _, ev := range hist[0].Events {
			if ev.Type == "decision" {
				decisions++
				if ev.Verdict == nil || ev.Verdict.Result != ResultPass || ev.Verdict.Candidate.Requests < 50 || ev.Actor != ActorController {
					t.Errorf("decision without figures: %+v", ev)
				}
			}
		}
		if decisions != 2 {
			t.Errorf("%d step decisions recorded, want 2", decisions)
		}
		if pools := h.rt.pools(); pools[route.Blue] != "v1" || pools[route.Green] != "v2" {
			t.Errorf("pools = %v, want both running", pools)
		}
	})
}

func TestBadReleaseRolledBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.rt.errRate["v2"] = 0.05
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		took := h.waitPhase(PhaseIdle, 2*time.Minute)
		if took > 10*time.Second {
			t.Errorf("5%% errors at 10%% rolled back after %v, want within 10 s", took)
		}
		st := h.c.Status()
		if st.Live.Version != "v1" || st.Weights["blue"] != 100 || st.Previous != nil {
			t.Fatalf("status after rollback: %+v", st)
		}
		d := h.history()[0]
		if d.Outcome != OutcomeRolledBack || !strings.Contains(d.Reason, "green error rate") || !strings.Contains(d.Reason, "rollback") {
			t.Fatalf("history: outcome %s reason %q", d.Outcome, d.Reason)
		}
		var decided bool
		for _, ev := range d.Events {
			if ev.Type == "decision" && ev.Verdict != nil && ev.Verdict.Result == ResultFail {
				decided = ev.Verdict.Candidate.ErrorRate > 0.02 && ev.Verdict.Baseline.Color == route.Blue
			}
		}
		if !decided {
			t.Errorf("no failing verdict with figures in %+v", d.Events)
		}
		if _, ok := h.rt.pools()[route.Green]; ok {
			t.Error("candidate still running after rollback")
		}
		if !slices.Contains(h.router.drained, route.Green) {
			t.Error("candidate stopped without draining")
		}
		t.Logf("rolled back after %v: %s", took, d.Reason)
	})
}

func TestSlowReleaseRolledBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.rt.latency["v2"] = 30 * time.Millisecond // 3x live's 10 ms
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		h.waitPhase(PhaseIdle, 2*time.Minute)
		if d := h.history()[0]; d.Outcome != OutcomeRolledBack || !strings.Contains(d.Reason, "p99") {
			t.Fatalf("outcome %s reason %q", d.Outcome, d.Reason)
		}
	})
}

func TestManualGateAndPromote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService()
		svc.Steps = []Step{{Weight: 10, Manual: true}}
		h := newHarness(t, svc, newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		time.Sleep(10 * time.Minute) // far past the progress deadline: a gate waits
		st := h.c.Status()
		if st.Phase != PhaseShifting || st.Weights["green"] != 10 || st.Deployment == nil || !st.Deployment.Manual {
			t.Fatalf("at the gate: %+v", st)
		}
		if st.Analysis == nil || st.Analysis.Result != ResultPass {
			t.Errorf("analysis at the gate: %+v", st.Analysis)
		}
		if err := h.c.Promote(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := h.c.Status(); st.Phase != PhaseIdle || st.Live.Version != "v2" {
			t.Fatalf("after promote: %+v", st)
		}
		if err := h.c.Promote(context.Background()); !errors.Is(err, ErrNoDeployment) {
			t.Errorf("second promote: %v, want ErrNoDeployment", err)
		}
	})
}

func TestPauseResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		time.Sleep(10 * time.Second)
		if err := h.c.Pause(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Minute)
		if st := h.c.Status(); st.Phase != PhasePaused || st.Weights["green"] != 10 {
			t.Fatalf("while paused: %+v", st)
		}
		if err := h.c.Resume(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(15 * time.Second) // the step had 20 s left
		if st := h.c.Status(); st.Weights["green"] != 10 {
			t.Fatalf("15 s after resume: weight %v, want still 10", st.Weights["green"])
		}
		time.Sleep(7 * time.Second)
		if st := h.c.Status(); st.Weights["green"] != 50 || st.Deployment.Step != 2 {
			t.Fatalf("22 s after resume: %+v", st)
		}
		if err := h.c.Resume(context.Background()); !errors.Is(err, ErrNoDeployment) {
			t.Errorf("resume while shifting: %v", err)
		}
	})
}

func TestAbort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		time.Sleep(5 * time.Second)
		if err := h.c.Abort(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := h.c.Status(); st.Weights["blue"] != 100 {
			t.Fatalf("abort did not swap traffic back at once: %+v", st)
		}
		h.waitPhase(PhaseIdle, time.Minute)
		d := h.history()[0]
		if d.Outcome != OutcomeAborted || d.Reason != "aborted by user" {
			t.Fatalf("history: %s %q", d.Outcome, d.Reason)
		}
		if _, ok := h.rt.pools()[route.Green]; ok {
			t.Error("candidate still running")
		}
		if err := h.c.Abort(context.Background()); !errors.Is(err, ErrNoDeployment) {
			t.Errorf("abort when idle: %v", err)
		}
	})
}

func TestRollbackWithinKeepPrevious(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		if err := h.c.Rollback(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := h.c.Status()
		if st.Live.Color != route.Blue || st.Live.Version != "v1" || st.Weights["blue"] != 100 || st.Previous != nil {
			t.Fatalf("after instant rollback: %+v", st)
		}
		if got := h.router.splitLog(); got[len(got)-1] != "blue:0" {
			t.Errorf("last split %v", got)
		}
		h.waitPhase(PhaseIdle, time.Minute)
		if _, ok := h.rt.pools()[route.Green]; ok {
			t.Error("demoted pool still running after drain and quiet period")
		}
		d := h.history()[0]
		if d.Strategy != "rollback" || d.Version != "v1" || d.FromVersion != "v2" || d.ID == "" {
			t.Errorf("history: %+v", d)
		}
		for _, ev := range d.Events {
			if ev.Deployment != d.ID {
				t.Errorf("event %q of the rollback record carries deployment %q, want %q", ev.Type, ev.Deployment, d.ID)
			}
		}
		if err := h.c.Rollback(context.Background()); !errors.Is(err, ErrNoPrevious) {
			t.Errorf("second rollback: %v, want ErrNoPrevious", err)
		}
	})
}

func TestRetirementAfterKeepPrevious(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService()
		svc.Policy.KeepPrevious = time.Minute
		h := newHarness(t, svc, newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		time.Sleep(55 * time.Second)
		if h.rt.pools()[route.Blue] != "v1" || h.c.Status().Previous == nil {
			t.Fatal("previous pool retired before keep_previous ended")
		}
		// A sticky client keeps using blue for a while after keep_previous.
		h.router.mu.Lock()
		h.router.counts[route.Blue].Requests += 1
		h.router.mu.Unlock()
		time.Sleep(10 * time.Second) // keep_previous over, quiet period not yet
		if h.rt.pools()[route.Blue] != "v1" {
			t.Fatal("previous pool stopped before it was quiet")
		}
		time.Sleep(15 * time.Second)
		if _, ok := h.rt.pools()[route.Blue]; ok || h.c.Status().Previous != nil {
			t.Fatalf("previous pool not retired: pools %v status %+v", h.rt.pools(), h.c.Status().Previous)
		}
		if !slices.Contains(h.router.drained, route.Blue) {
			t.Error("retired without draining")
		}
		if err := h.c.Rollback(context.Background()); !errors.Is(err, ErrNoPrevious) {
			t.Errorf("rollback after retirement: %v", err)
		}
	})
}

func TestRestartMidCanary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		h := newHarness(t, testService(), store)
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		time.Sleep(35 * time.Second) // into step 2 (50%)
		before := h.c.Status()
		if before.Deployment == nil || before.Deployment.Step != 2 {
			t.Fatalf("before the crash: %+v", before)
		}
		h.stop() // the daemon dies; the state in the store is all that survives

		h2 := newHarness(t, testService(), store)
		if err := h2.c.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		if live, w := h2.router.Split(); live != route.Blue || w != 50 {
			t.Fatalf("restored router split = %s %v, want blue 50 before anything else", live, w)
		}
		after := h2.c.Status()
		if after.Deployment.ID != before.Deployment.ID || after.Deployment.Step != 2 || !after.Deployment.StepUntil.Equal(before.Deployment.StepUntil) {
			t.Fatalf("restored deployment %+v, want %+v", after.Deployment, before.Deployment)
		}
		h2.rt.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"}) // the daemon adopts the running instances
		h2.rt.Start(context.Background(), route.Green, runtime.Release{Version: "v2"})
		h2.start()
		took := h2.waitPhase(PhaseIdle, 2*time.Minute)
		if took > 30*time.Second {
			t.Errorf("resumed step ended %v after restart, want by its persisted deadline (25 s)", took)
		}
		d := h2.history()[0]
		if d.Outcome != OutcomePromoted {
			t.Fatalf("outcome %s", d.Outcome)
		}
		var resumed bool
		for _, ev := range d.Events {
			resumed = resumed || (ev.Type == "resumed" && ev.Actor == ActorDaemon)
		}
		if !resumed {
			t.Error("restart not recorded in history")
		}
	})
}

func TestSecondDeployRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		d := h.deploy("v2", "")
		_, err := h.c.Deploy(context.Background(), "v3", "", "", nil)
		if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), d.ID) || !strings.Contains(err.Error(), "v2") {
			t.Fatalf("second deploy: %v, want ErrBusy naming %s v2", err, d.ID)
		}
		for _, tc := range []struct{ version, strategy string }{{"", ""}, {"v 3", ""}, {"v3", "blue-green-magic"}} {
			if _, err := h.c.Deploy(context.Background(), tc.version, tc.strategy, "", nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("deploy %q %q: %v, want ErrInvalid", tc.version, tc.strategy, err)
			}
		}
	})
}

func TestCrashLoopingCandidateRolledBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		time.Sleep(3 * time.Second)
		h.c.PoolFailed(route.Blue, "v1", errCrash) // not the candidate: ignored
		h.c.PoolFailed(route.Green, "v2", errCrash)
		h.waitPhase(PhaseIdle, time.Minute)
		d := h.history()[0]
		if d.Outcome != OutcomeRolledBack || !strings.Contains(d.Reason, errCrash.Error()) {
			t.Fatalf("history: %s %q", d.Outcome, d.Reason)
		}
		if st := h.c.Status(); st.Live.Version != "v1" || st.Weights["blue"] != 100 {
			t.Errorf("status: %+v", st)
		}
	})
}

func TestStartFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.rt.fail["v2"] = errors.New("no such binary")
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		h.waitPhase(PhaseIdle, time.Minute)
		if d := h.history()[0]; d.Outcome != OutcomeFailed || !strings.Contains(d.Reason, "no such binary") {
			t.Fatalf("history: %s %q", d.Outcome, d.Reason)
		}
		if got := h.router.splitLog(); len(got) != 1 {
			t.Errorf("traffic moved: %v", got)
		}
	})
}

func TestCorruptStateRefused(t *testing.T) {
	store := newFakeStore()
	store.state["web"] = []byte(`{"schema":1,"service":"web","phase":"shifting"}`)
	h := newHarness(t, testService(), store)
	err := h.c.Restore(context.Background())
	if err == nil || !strings.Contains(err.Error(), "corrupt state") {
		t.Fatalf("Restore = %v, want corrupt state", err)
	}
	store.state["web"] = []byte(`{not json`)
	if err := h.c.Restore(context.Background()); err == nil {
		t.Fatal("Restore accepted unreadable JSON")
	}
}

// failingStore refuses to persist the state once broken, and the history
// once historyBroken.
type failingStore struct {
	*fakeStore
	broken        bool
	historyBroken bool
}

func (s *failingStore) SaveDeployment(d *Deployment) error {
	if s.historyBroken {
		return errors.New("history bucket full")
	}
	return s.fakeStore.SaveDeployment(d)
}

func (s *failingStore) SaveState(service string, st *State) error {
	if s.broken {
		return errors.New("disk full")
	}
	return s.fakeStore.SaveState(service, st)
}

// A change that cannot be persisted, state or history, is refused and
// nothing is acted on.
func TestNothingHappensUnlessPersisted(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(*failingStore)
		err     string
		check   func(t *testing.T, h *harness, fs *failingStore)
	}{
		{"state", func(fs *failingStore) { fs.broken = true }, "disk full",
			func(t *testing.T, h *harness, _ *failingStore) {
				// History is written first, so the stream saw the start.
				h.mu.Lock()
				defer h.mu.Unlock()
				if len(h.events) == 0 || h.events[0].Type != "started" || h.events[0].Service != "web" {
					t.Errorf("events stream: %+v", h.events)
				}
			}},
		{"history", func(fs *failingStore) { fs.historyBroken = true }, "history bucket full",
			func(t *testing.T, _ *harness, fs *failingStore) {
				if st, _, _ := fs.LoadState("web"); st.Run != nil {
					t.Fatalf("state persisted although its record was not: run %+v", st.Run.Record)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, testService(), newFakeStore())
				fs := &failingStore{fakeStore: h.store}
				h.c.opts.Store = fs
				h.start()
				h.firstLive()
				tc.breakIt(fs)
				_, err := h.c.Deploy(context.Background(), "v2", "", "", nil)
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("deploy with a broken %s: %v", tc.name, err)
				}
				time.Sleep(time.Second)
				if st := h.c.Status(); st.Phase != PhaseIdle || st.Deployment != nil {
					t.Fatalf("state advanced without being persisted: %+v", st)
				}
				if _, ok := h.rt.pools()[route.Green]; ok {
					t.Fatal("acted on a change that was not persisted")
				}
				tc.check(t, h, fs)
			})
		})
	}
}

// A daemon that shuts down while a rolled-back candidate drains must not
// stop it under its requests in flight: the persisted job drains and stops
// it after the restart.
func TestShutdownDuringDrainStopsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		time.Sleep(5 * time.Second)
		h.router.mu.Lock()
		h.router.drainHold = true
		h.router.mu.Unlock()
		if err := h.c.Abort(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // draining green, well within the 5 s drain timeout
		h.stop()
		if v := h.rt.pools()[route.Green]; v != "v2" {
			t.Fatalf("candidate stopped during shutdown while draining (pools %v, log %v)", h.rt.pools(), h.rt.log)
		}
		if st, _, _ := h.store.LoadState("web"); st.Job == nil || st.Job.Kind != JobRollback {
			t.Fatalf("persisted job %+v, want the rollback to run again after a restart", st.Job)
		}
	})
}

// A run's final record is written before the state that forgets the run: a
// kill -9 between the two writes must not lose the deployment from history.
func TestFinalRecordSavedBeforeState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		d := h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		h.store.mu.Lock()
		ops := slices.Clone(h.store.ops)
		h.store.mu.Unlock()
		lastRecord := -1
		for i, op := range ops {
			if strings.HasPrefix(op, "record "+d.ID+" ") {
				lastRecord = i
			}
		}
		ran := slices.Index(ops, "state "+d.ID)
		if lastRecord < 0 || ran < 0 {
			t.Fatalf("writes %v: no record or state of %s", ops, d.ID)
		}
		ended := ran + slices.Index(ops[ran:], "state -")
		if ended < ran {
			t.Fatalf("writes %v: the run never ended", ops)
		}
		if lastRecord > ended {
			t.Errorf("writes %v: final record of %s (at %d) saved after the state without the run (at %d)", ops, d.ID, lastRecord, ended)
		}
		if got := ops[ended-1]; got != "record "+d.ID+" promoted" {
			t.Errorf("write before the run leaves the state = %q, want its final record", got)
		}
	})
}

// An instant rollback to a warm pool that has no healthy instance would
// send every request to the fallback page and then retire the healthy live
// pool; it is refused and the live pool stays.
func TestRollbackToDeadPreviousRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		h.router.setHealthy(route.Blue, 0) // blue v1 died while kept warm
		splits := len(h.router.splitLog())
		err := h.c.Rollback(context.Background())
		if !errors.Is(err, ErrNoPrevious) {
			t.Fatalf("rollback to a dead pool: %v, want ErrNoPrevious", err)
		}
		for _, s := range []string{"web", "blue", "v1", "0 of 2 instances healthy"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not name %q", err, s)
			}
		}
		time.Sleep(time.Minute)
		st := h.c.Status()
		if st.Live == nil || st.Live.Color != route.Green || st.Live.Version != "v2" || st.Weights["green"] != 100 || st.Previous == nil {
			t.Fatalf("after the refused rollback: %+v", st)
		}
		if got := h.router.splitLog(); len(got) != splits {
			t.Errorf("splits after the refused rollback: %v", got[splits:])
		}
		if h.rt.pools()[route.Green] != "v2" {
			t.Errorf("live pool stopped: %v", h.rt.pools())
		}
		h.router.setHealthy(route.Blue, 2)
		if err := h.c.Rollback(context.Background()); err != nil {
			t.Fatalf("rollback once blue is healthy again: %v", err)
		}
	})
}

// Retirement never drains a pool while the live one has no healthy
// instance: the kept pool may be all that serves. It is tried again later.
func TestRetirementWaitsForHealthyLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService()
		svc.Policy.KeepPrevious = time.Minute
		h := newHarness(t, svc, newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		h.router.setHealthy(route.Green, 0) // live green v2 died
		time.Sleep(2 * time.Minute)
		if h.rt.pools()[route.Blue] != "v1" || h.c.Status().Previous == nil || slices.Contains(h.router.drained, route.Blue) {
			t.Fatalf("previous pool drained or stopped while live had no healthy instance: pools %v, drained %v", h.rt.pools(), h.router.drained)
		}
		h.mu.Lock()
		var told bool
		for _, ev := range h.events {
			told = told || (ev.Type == "retired" && strings.Contains(ev.Message, "live green has 0 of 2 instances healthy"))
		}
		h.mu.Unlock()
		if !told {
			t.Error("no event says why the retirement waits")
		}
		h.router.setHealthy(route.Green, 2)
		time.Sleep(time.Minute)
		if _, ok := h.rt.pools()[route.Blue]; ok || h.c.Status().Previous != nil {
			t.Fatalf("previous pool not retired once live was healthy: %v", h.rt.pools())
		}
	})
}

// A deployment into the colour of the kept previous pool drains that pool
// before the runtime replaces it, so its requests in flight, streams and
// preview traffic are not cut; a pool of the same version is adopted as is.
func TestKeptPreviousDrainedBeforeReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		d := h.deploy("v3", StrategyAllAtOnce) // to blue, where v1 is kept
		h.waitPhase(PhaseIdle, time.Minute)
		calls := h.router.callLog()
		from := slices.Index(calls, "start green v2")
		drain := from + slices.Index(calls[from:], "drain blue")
		start := slices.Index(calls, "start blue v3")
		if start < 0 || drain < from || drain > start {
			t.Fatalf("calls %v: want drain blue before start blue v3", calls)
		}
		var told bool
		for _, ev := range h.history()[0].Events {
			told = told || ev.Message == "draining kept previous blue v1 before starting v3"
		}
		if h.history()[0].ID != d.ID || !told {
			t.Errorf("no draining event in %+v", h.history()[0].Events)
		}

		// green v2 is now kept; deploying v2 again adopts it without a drain.
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		calls = h.router.callLog()
		again := slices.Index(calls, "start blue v3") + 1
		if slices.Contains(calls[again:], "drain green") {
			t.Errorf("calls %v: the kept pool of the deployed version was drained", calls[again:])
		}
	})
}

// A start job run again after a restart does not drain the candidate it
// already started in place of the kept previous pool.
func TestRestartedStartJobDoesNotDrainCandidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.rt.Start(context.Background(), route.Blue, runtime.Release{Version: "v3"})
		j := Job{Kind: JobStart, Color: route.Blue, Version: "v3", Replaces: "v1"}
		if _, err := h.c.runJob(context.Background(), j, h.c.state()); err != nil {
			t.Fatal(err)
		}
		if len(h.router.drained) != 0 {
			t.Errorf("drained %v: the candidate itself", h.router.drained)
		}
	})
}

var _ Router = (*fakeRouter)(nil)

// Preview reaches the candidate while a deployment runs (blue for a first
// deployment, where the router's default live.Other() is green and answers
// 503), the idle colour otherwise, and again so after a restart.
func TestPreviewFollowsCandidate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		h := newHarness(t, testService(), store)
		h.start()
		wantPreview := func(when string, want route.Color) {
			t.Helper()
			if got, ok := h.router.preview(); !ok || got != want {
				t.Errorf("%s: preview reaches %v (set %v), want %s", when, got, ok, want)
			}
		}
		h.deploy("v1", "")
		// Deploy replies once the state is persisted; Run may not have
		// pointed the preview yet, or may already have promoted the
		// first deployment: once Run is done, blue must have been set.
		synctest.Wait()
		h.router.mu.Lock()
		sawBlue := slices.Contains(h.router.previews, route.Blue)
		h.router.mu.Unlock()
		if !sawBlue {
			t.Errorf("first deployment: preview never reached blue, the candidate")
		}
		h.waitPhase(PhaseIdle, time.Minute)
		wantPreview("after the first deployment", route.Green)
		h.deploy("v2", "")
		wantPreview("second deployment", route.Green)
		h.waitPhase(PhaseIdle, 5*time.Minute)
		wantPreview("after the second deployment", route.Blue)
		if err := h.c.Rollback(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantPreview("after an instant rollback to blue", route.Green)
		h.stop()

		h = newHarness(t, testService(), store)
		if err := h.c.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantPreview("after restore", route.Green)
	})
}

// A first deployment has no live pool: the router serves the only healthy
// pool, so its failure must not claim that no user traffic moved.
func TestFirstDeploymentFailureWording(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.rt.fail["v1"] = errors.New("no such binary")
		h.start()
		h.deploy("v1", "")
		h.waitPhase(PhaseIdle, time.Minute)
		d := h.history()[0]
		var msg string
		for _, ev := range d.Events {
			if ev.Type == EventFailed && msg == "" {
				msg = ev.Message // the decision; the stop job's result follows
			}
		}
		if d.Outcome != OutcomeFailed || !strings.Contains(msg, "first deployment: stopping blue v1") || strings.Contains(msg, "no user traffic moved") {
			t.Fatalf("first deployment failed with %s %q", d.Outcome, msg)
		}
	})
}

// Redeploying the version whose kept pool is being retired adopts that
// pool, which retirement had already drained: the candidate's colour must
// be back in rotation before the pre_traffic hooks smoke-test it through
// preview, or they get the 503 of a drained colour.
func TestRedeployOfRetiringVersionServesPreview(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService()
		svc.Policy.KeepPrevious = time.Minute
		svc.Policy.QuietPeriod = time.Hour
		h := newHarness(t, svc, newFakeStore())
		var mu sync.Mutex
		var checked, served bool
		h.onEvent = func(ev Event) {
			if ev.Type == "phase" && ev.Phase == PhaseVerifying && ev.Message == "blue v1 is healthy; running pre_traffic hooks" {
				mu.Lock()
				checked, served = true, h.router.previewServes()
				mu.Unlock()
			}
		}
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		time.Sleep(time.Minute + 5*time.Second) // keep_previous over: blue v1 drained, waiting to be quiet
		if st := h.c.state(); !st.Retiring || !slices.Contains(h.router.callLog(), "drain blue") {
			t.Fatalf("blue v1 not being retired: retiring %v, calls %v", st.Retiring, h.router.callLog())
		}
		mu.Lock()
		checked = false // the first deployment's pre_traffic phase
		mu.Unlock()
		h.deploy("v1", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		mu.Lock()
		defer mu.Unlock()
		if !checked || !served {
			t.Fatalf("pre_traffic hooks of the redeployed v1 started (%v) with preview answering 503 (serving %v): blue stayed drained; calls %v",
				checked, served, h.router.callLog())
		}
		if st := h.c.Status(); st.Live == nil || st.Live.Color != route.Blue || st.Live.Version != "v1" || h.rt.pools()[route.Blue] != "v1" {
			t.Fatalf("after the redeploy: %+v, pools %v", st, h.rt.pools())
		}
	})
}

// An abort or a failed analysis while the live pool has no healthy
// instance moves the split back to live but keeps the candidate running:
// the router serves it as the only healthy pool, and stopping it would
// send every user to the fallback page. The cleanup is retried, and done
// once live is healthy again.
func TestRollbackKeepsOnlyHealthyCandidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		end     func(h *harness)
		outcome Outcome
	}{
		{"abort", func(h *harness) {
			if err := h.c.Abort(context.Background()); err != nil {
				h.t.Fatal(err)
			}
		}, OutcomeAborted},
		{"failed analysis", func(h *harness) {
			h.router.mu.Lock()
			h.router.errRate[route.Green] = 0.2
			h.router.mu.Unlock()
			time.Sleep(5 * time.Second)
		}, OutcomeRolledBack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, testService(), newFakeStore())
				h.start()
				h.firstLive()
				h.deploy("v2", "")
				h.waitPhase(PhaseShifting, time.Minute)
				time.Sleep(3 * time.Second)
				h.router.setHealthy(route.Blue, 0) // live blue v1 died
				tc.end(h)
				time.Sleep(time.Minute)
				if got := h.router.splitLog(); got[len(got)-1] != "blue:0" {
					t.Errorf("split not moved back to live: %v", got)
				}
				if h.rt.pools()[route.Green] != "v2" || slices.Contains(h.router.callLog(), "drain green") {
					t.Fatalf("the only healthy pool was drained or stopped: pools %v, calls %v", h.rt.pools(), h.router.callLog())
				}
				if st := h.c.state(); st.Phase != PhaseRollingBack || st.Run == nil {
					t.Fatalf("phase %s, run %v: want rolling_back until the candidate can be stopped", st.Phase, st.Run != nil)
				}
				var told int
				for _, ev := range h.history()[0].Events {
					if ev.Type == "decision" && strings.HasPrefix(ev.Message, "not stopping green v2: live blue has 0 of 2 instances healthy; retrying") {
						told++
					}
				}
				if told != 1 {
					t.Errorf("%d history events say why green v2 keeps running, want 1", told)
				}
				h.router.setHealthy(route.Blue, 2)
				h.waitPhase(PhaseIdle, time.Minute)
				if _, ok := h.rt.pools()[route.Green]; ok {
					t.Error("candidate still running once live was healthy")
				}
				if d := h.history()[0]; d.Outcome != tc.outcome {
					t.Errorf("outcome %s, want %s", d.Outcome, tc.outcome)
				}
			})
		})
	}
}
