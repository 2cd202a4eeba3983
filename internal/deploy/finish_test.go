package deploy

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// Right after an instant rollback the service reports idle while the
// demoted pool drains and goes quiet; a deploy then waits for that instead
// of failing with ErrBusy.
func TestDeployWaitsForFinishingWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		if err := h.c.Rollback(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := h.c.state(); st.Phase != PhaseIdle || st.Run == nil {
			t.Fatalf("right after the rollback the demoted pool should still be retiring: phase %s, run %v", st.Phase, st.Run != nil)
		}
		start := time.Now()
		d, err := h.c.Deploy(context.Background(), "v3", StrategyAllAtOnce, "", nil)
		if err != nil {
			t.Fatalf("deploy while the rollback finishes: %v", err)
		}
		if waited := time.Since(start); waited <= 0 || waited > finishWait {
			t.Errorf("deploy waited %v, want more than 0 and at most %v", waited, finishWait)
		}
		if d.Version != "v3" {
			t.Fatalf("deployment = %+v", d)
		}
	})
}

// A deployment interrupted by a restart keeps the analysis policy it was
// started with, even when the configuration changed in between.
func TestRestoreKeepsRunningPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		h := newHarness(t, testService(), store)
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		h.waitPhase(PhaseShifting, time.Minute)
		h.stop()

		changed := testService()
		changed.Policy.MaxErrorRate = 0.5
		h2 := newHarness(t, changed, store)
		if err := h2.c.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := h2.c.state().Policy.MaxErrorRate; got != 0.01 {
			t.Fatalf("restored running deployment judged with max error rate %v, want the 0.01 it started with", got)
		}
	})
}

// A history record left "running" by a crash between writing history and
// writing state (the deployment was never acknowledged) is closed as
// failed on restore; the record of the run the state resumes is not.
func TestRestoreClosesOrphanRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		h := newHarness(t, testService(), store)
		h.start()
		h.firstLive()
		running := h.deploy("v2", "")
		h.waitPhase(PhaseShifting, time.Minute)
		h.stop()
		orphan := Deployment{ID: "web-orphan", Service: "web", Version: "v9", Outcome: OutcomeRunning, StartedAt: time.Now()}
		if err := store.SaveDeployment(&orphan); err != nil {
			t.Fatal(err)
		}

		h2 := newHarness(t, testService(), store)
		if err := h2.c.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		byID := map[string]Deployment{}
		hist, err := h2.c.History(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range hist {
			byID[d.ID] = d
		}
		if d := byID["web-orphan"]; d.Outcome != OutcomeFailed || d.EndedAt.IsZero() {
			t.Errorf("orphan record after restore: %+v, want failed with an end time", d)
		}
		if d := byID[running.ID]; d.Outcome != OutcomeRunning {
			t.Errorf("the resumed deployment's record is %s, want running", d.Outcome)
		}
	})
}

// A router that seals a drained colour (the embedded proxy: nothing can
// reach it any more) needs no quiet period: after a rollback the demoted
// pool stops right after its drain, and a deploy issued right after does
// not wait the quiet period for it. A router that cannot seal (DNS) still
// gets the full quiet period.
func TestSealedColourStopsWithoutTheQuietPeriod(t *testing.T) {
	for _, seals := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, testService(), newFakeStore())
			h.router.seals = seals
			h.start()
			h.firstLive()
			h.deploy("v2", StrategyAllAtOnce)
			h.waitPhase(PhaseIdle, time.Minute)
			if err := h.c.Rollback(context.Background()); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := h.c.Deploy(context.Background(), "v3", StrategyAllAtOnce, "", nil); err != nil {
				t.Fatal(err)
			}
			waited := time.Since(start)
			quiet := h.c.state().Policy.QuietPeriod
			if seals && waited >= quiet {
				t.Errorf("sealing router: deploy after rollback waited %v, the quiet period (%v) it does not need", waited, quiet)
			}
			if !seals && waited < quiet {
				t.Errorf("router that cannot seal: deploy after rollback waited %v, less than the quiet period %v", waited, quiet)
			}
		})
	}
}
