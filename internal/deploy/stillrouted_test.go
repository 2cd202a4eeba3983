package deploy

import (
	"context"
	"errors"
	"slices"
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

// TestQuietPeriodCountsOnTopOfTheRoutersLag: a router whose counts come
// from CloudWatch sees a period's requests only once the period has been
// published (every minute here), so a pool that a sticky client still
// uses looks unchanged for a minute at a time; with quiet_period 10s it
// must not be retired between two publications, only once no request
// was published for quiet_period on top of the lag.
func TestQuietPeriodCountsOnTopOfTheRoutersLag(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService()
		svc.Policy.KeepPrevious = time.Minute
		h := newHarness(t, svc, newFakeStore())
		h.router.mu.Lock()
		h.router.lag = time.Minute
		h.router.mu.Unlock()
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		// A sticky client keeps using blue; CloudWatch publishes its
		// requests once a minute, for four minutes.
		for range 4 {
			time.Sleep(time.Minute)
			h.router.mu.Lock()
			h.router.counts[route.Blue].Requests += 30
			h.router.mu.Unlock()
			if h.rt.pools()[route.Blue] != "v1" {
				t.Fatal("blue retired between two CloudWatch publications of its requests")
			}
		}
		time.Sleep(2 * time.Minute)
		if _, ok := h.rt.pools()[route.Blue]; ok || h.c.Status().Previous != nil {
			t.Fatalf("blue not retired 2m after its last published request: pools %v", h.rt.pools())
		}
	})
}

// TestFirstDeploymentFailureStopsEvenIfStillRouted: with no live pool
// there is nothing the traffic could move to, so a failed first
// deployment's pool is stopped although the router says its engine still
// routes it (Route53 without records yet, an ALB forwarding to its group).
func TestFirstDeploymentFailureStopsEvenIfStillRouted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.router.mu.Lock()
		h.router.drainRouted = true
		h.router.mu.Unlock()
		h.rt.fail["v1"] = errors.New("no such binary")
		h.start()
		h.deploy("v1", "")
		h.waitPhase(PhaseIdle, time.Minute)
		if d := h.history()[0]; d.Outcome != OutcomeFailed {
			t.Fatalf("first deployment ended %s, want failed", d.Outcome)
		}
		if !slices.Contains(h.router.callLog(), "drain blue") {
			t.Errorf("the failed pool was not drained: %v", h.router.callLog())
		}
	})
}
