package deploy

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// A reloaded configuration changes the steps and analysis limits of the
// next deployment only: the one already running is judged, and shifted, by
// the rules it started with.
func TestSetSettingsAppliesFromNextDeployment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.rt.errRate["v2"] = 0.05 // over the configured 1% limit
		h.rt.errRate["v3"] = 0.05 // within the reloaded 50% limit
		h.start()
		h.firstLive()

		h.deploy("v2", "")
		next := testService()
		next.Steps = []Step{{Weight: 30, Pause: 20 * time.Second}}
		next.Policy.MaxErrorRate = 0.5
		if err := h.c.SetSettings(next); err != nil {
			t.Fatalf("SetSettings: %v", err)
		}
		h.waitPhase(PhaseIdle, 2*time.Minute)
		d := h.history()[0]
		if d.Version != "v2" || d.Outcome != OutcomeRolledBack || !strings.Contains(d.Reason, "limit 1%") {
			t.Fatalf("running deployment after SetSettings: %s %s %q, want v2 rolled back by the 1%% limit it started with", d.Version, d.Outcome, d.Reason)
		}
		if got := h.router.splitLog(); slices.Contains(got, "blue:30") || !slices.Contains(got, "blue:10") {
			t.Errorf("running deployment's splits %v: want its own first step (10), not the reloaded one (30)", got)
		}

		h.deploy("v3", "")
		took := h.waitPhase(PhaseIdle, 2*time.Minute)
		d = h.history()[0]
		if d.Version != "v3" || d.Outcome != OutcomePromoted {
			t.Fatalf("next deployment: %s %s %q, want v3 promoted under the reloaded 50%% limit", d.Version, d.Outcome, d.Reason)
		}
		var steps []float64
		for _, ev := range d.Events {
			if ev.Type == "step" {
				steps = append(steps, ev.Weight)
			}
		}
		if !slices.Equal(steps, []float64{30}) {
			t.Errorf("next deployment's steps %v, want the reloaded [30]", steps)
		}
		if took < 20*time.Second || took > 30*time.Second {
			t.Errorf("the reloaded 20 s step took %v", took)
		}
		if got := h.router.splitLog(); got[len(got)-2] != "blue:30" {
			t.Errorf("splits %v: want the reloaded 30%% before the promotion", got)
		}
	})
}

// A controller refuses another service's configuration.
func TestSetSettingsRefusesOtherService(t *testing.T) {
	h := newHarness(t, testService(), newFakeStore())
	other := testService()
	other.Name = "api"
	if err := h.c.SetSettings(other); err == nil {
		t.Errorf("SetSettings of service %s accepted", other.Name)
	}
	if h.c.cfg().Name != "web" {
		t.Errorf("the controller now serves %q", h.c.cfg().Name)
	}
}

// A reloaded quiet_period, like keep_previous, applies from the next
// deployment on: the pool kept by the running one is retired after the
// quiet period it was promoted with.
func TestSetSettingsQuietPeriodFromNextDeployment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService()
		svc.Policy.KeepPrevious = time.Minute
		h := newHarness(t, svc, newFakeStore())
		h.start()
		h.firstLive()
		h.deploy("v2", StrategyAllAtOnce)
		h.waitPhase(PhaseIdle, time.Minute)
		next := testService()
		next.Policy.KeepPrevious = time.Minute
		next.Policy.QuietPeriod = time.Hour
		if err := h.c.SetSettings(next); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute + 30*time.Second) // keep_previous, then 10 s quiet
		if _, ok := h.rt.pools()[route.Blue]; ok || h.c.Status().Previous != nil {
			t.Fatalf("blue v1 not retired 30 s after keep_previous: the reloaded 1 h quiet period applied to the running deployment (pools %v)", h.rt.pools())
		}
	})
}
