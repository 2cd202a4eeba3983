package deploy

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// TestRollbackDoesNotStopAPoolStillRouted: when the router's Drain says
// its engine still sends the candidate traffic (an ALB whose rollback
// write keeps failing), the rollback does not stop the candidate; it
// stops it once the engine has taken the weight away.
func TestRollbackDoesNotStopAPoolStillRouted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", "")
		h.waitPhase(PhaseShifting, time.Minute)
		time.Sleep(3 * time.Second)
		h.router.mu.Lock()
		h.router.drainRouted = true
		h.router.mu.Unlock()
		if err := h.c.Abort(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if h.rt.pools()[route.Green] != "v2" {
			t.Fatalf("the candidate was stopped while the router still sent it traffic: pools %v, calls %v", h.rt.pools(), h.router.callLog())
		}
		if st := h.c.state(); st.Phase != PhaseRollingBack || st.Run == nil {
			t.Fatalf("phase %s, run %v: want rolling_back until the candidate can be stopped", st.Phase, st.Run != nil)
		}
		h.router.mu.Lock()
		h.router.drainRouted = false
		h.router.mu.Unlock()
		h.waitPhase(PhaseIdle, 5*time.Minute)
		if _, ok := h.rt.pools()[route.Green]; ok {
			t.Error("candidate still running once the router had taken its weight away")
		}
	})
}
