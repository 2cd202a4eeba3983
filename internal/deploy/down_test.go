package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// waitStatus sleeps (in fake time) until cond holds for the status.
func (h *harness) waitStatus(what string, limit time.Duration, cond func(Status) bool) {
	h.t.Helper()
	for start := time.Now(); time.Since(start) < limit; {
		if cond(h.c.Status()) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("%s not reached within %v; status %+v", what, limit, h.c.Status())
}

// promoted has v2 live on green and v1 kept warm on blue.
func (h *harness) promoted() {
	h.t.Helper()
	h.firstLive()
	h.deploy("v2", StrategyAllAtOnce)
	h.waitPhase(PhaseIdle, time.Minute)
	if st := h.c.Status(); st.Live.Version != "v2" || st.Previous == nil || st.Previous.Version != "v1" {
		h.t.Fatalf("after the promotion: %+v", st)
	}
}

func (h *harness) down() {
	h.t.Helper()
	if err := h.c.Down(context.Background(), ActorUser); err != nil {
		h.t.Fatalf("down: %v", err)
	}
	h.waitStatus("down with its pools stopped", time.Minute, func(s Status) bool { return s.Down && !s.Stopping })
}

// A down drains both colours, then stops them, and keeps live and the
// previous pool recorded; while down, what would start or move traffic is
// refused, naming the way back; an up starts live (then traffic flows)
// and the previous pool again.
func TestDownAndUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.promoted()
		h.down()

		if pools := h.rt.pools(); len(pools) != 0 {
			t.Fatalf("pools still running after the down: %v", pools)
		}
		calls := h.router.callLog()
		last := calls[len(calls)-4:]
		drains, stops := last[:2], last[2:]
		slices.Sort(drains)
		if !slices.Equal(drains, []string{"drain blue", "drain green"}) || !slices.Equal(stops, []string{"stop blue", "stop green"}) {
			t.Errorf("down's calls end %v, want both colours drained, then both stopped", last)
		}
		st := h.c.Status()
		if !st.Down || st.DownSince.IsZero() || st.Live == nil || st.Live.Version != "v2" || st.Previous == nil || st.Previous.Version != "v1" {
			t.Fatalf("status while down: %+v, want down with v2 live and v1 previous recorded", st)
		}
		if got := h.c.Serving(); len(got) != 0 {
			t.Errorf("Serving while down = %v: a restarted daemon would start them", got)
		}
		if got := h.c.TrafficColors(); len(got) != 0 {
			t.Errorf("TrafficColors while down = %v", got)
		}
		ctx := context.Background()
		if _, err := h.c.Deploy(ctx, "v3", "", "", nil); !errors.Is(err, ErrDown) || !strings.Contains(err.Error(), "`cutover up web`") {
			t.Errorf("deploy while down: %v, want ErrDown naming cutover up", err)
		}
		for name, cmd := range map[string]func(context.Context) error{"rollback": h.c.Rollback, "promote": h.c.Promote, "pause": h.c.Pause} {
			if err := cmd(ctx); !errors.Is(err, ErrDown) {
				t.Errorf("%s while down: %v, want ErrDown", name, err)
			}
		}
		if err := h.c.Down(ctx, ActorUser); err != nil {
			t.Errorf("down while down (its pools stopped): %v, want it to stop them again", err)
		}
		h.waitStatus("stopped again", time.Minute, func(s Status) bool { return !s.Stopping })

		if err := h.c.Up(ctx, ActorUser); err != nil {
			t.Fatal(err)
		}
		h.waitStatus("up", time.Minute, func(s Status) bool { return !s.Down })
		time.Sleep(time.Second) // the previous pool starts after live
		if pools := h.rt.pools(); pools[route.Green] != "v2" || pools[route.Blue] != "v1" {
			t.Fatalf("pools after the up: %v, want green v2 live and blue v1 warm", pools)
		}
		st = h.c.Status()
		if st.Down || st.Starting || st.Weights["green"] != 100 || st.Previous == nil {
			t.Fatalf("status after the up: %+v", st)
		}
		if split := h.router.splitLog(); split[len(split)-1] != "green:0" {
			t.Errorf("no split to live after the up: %v", split)
		}
		if err := h.c.Rollback(ctx); err != nil {
			t.Errorf("instant rollback after the up: %v", err)
		}
		if err := h.c.Up(ctx, ActorUser); !errors.Is(err, ErrNotDown) {
			t.Errorf("up while up: %v, want ErrNotDown", err)
		}

		hist := h.history()
		byStrategy := map[string]Deployment{}
		for _, d := range hist {
			if _, seen := byStrategy[d.Strategy]; !seen {
				byStrategy[d.Strategy] = d
			}
		}
		down, up := byStrategy["down"], byStrategy["up"]
		if down.Outcome != OutcomeDown || down.Version != "v2" || !hasEvent(down, EventDown, "green v2 and blue v1 drained and stopped") {
			t.Errorf("down's history record: %+v", down)
		}
		if up.Outcome != OutcomeUp || !strings.HasPrefix(up.Reason, "brought up by user after ") || !hasEvent(up, EventUp, "green v2 is healthy: traffic flows") ||
			!hasEvent(up, EventUp, "previous blue v1 is healthy again") {
			t.Errorf("up's history record: %+v", up)
		}
	})
}

func hasEvent(d Deployment, typ EventType, msg string) bool {
	return slices.ContainsFunc(d.Events, func(ev Event) bool { return ev.Type == typ && strings.Contains(ev.Message, msg) })
}

// A restarted daemon leaves a service that is down as it was: nothing is
// started, and an up after the restart works.
func TestDownSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		h := newHarness(t, testService(), store)
		h.start()
		h.firstLive()
		h.down()
		h.stop()

		h2 := newHarness(t, testService(), store)
		if err := h2.c.Restore(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := h2.c.Serving(); len(got) != 0 {
			t.Fatalf("Serving after the restart = %v, want none", got)
		}
		h2.start()
		time.Sleep(time.Minute)
		if log := h2.rt.log; len(log) != 0 {
			t.Fatalf("the restarted controller touched the runtime: %v", log)
		}
		if st := h2.c.Status(); !st.Down || st.Live == nil || st.Live.Version != "v1" {
			t.Fatalf("status after the restart: %+v", st)
		}
		if err := h2.c.Up(context.Background(), ActorUser); err != nil {
			t.Fatal(err)
		}
		h2.waitStatus("up", time.Minute, func(s Status) bool { return !s.Down })
		if pools := h2.rt.pools(); pools[route.Blue] != "v1" {
			t.Fatalf("pools after the up: %v", pools)
		}
	})
}

// An up whose live pool does not become healthy leaves the service down,
// with nothing running, and says why in history.
func TestUpFailureStaysDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, testService(), newFakeStore())
		h.start()
		h.firstLive()
		h.down()
		h.rt.fail["v1"] = errCrash
		if err := h.c.Up(context.Background(), ActorUser); err != nil {
			t.Fatal(err)
		}
		h.waitStatus("the up over", time.Minute, func(s Status) bool { return !s.Starting && !s.Stopping })
		if st := h.c.Status(); !st.Down {
			t.Fatalf("status after a failed up: %+v, want still down", st)
		}
		if d := h.history()[0]; d.Strategy != "up" || d.Outcome != OutcomeFailed || !strings.Contains(d.Reason, errCrash.Error()) {
			t.Fatalf("history[0] = %+v, want the failed up with its reason", d)
		}
		if pools := h.rt.pools(); len(pools) != 0 {
			t.Fatalf("pools after a failed up: %v", pools)
		}
		delete(h.rt.fail, "v1")
		if err := h.c.Up(context.Background(), ActorUser); err != nil {
			t.Fatalf("second up: %v", err)
		}
		h.waitStatus("up", time.Minute, func(s Status) bool { return !s.Down })
	})
}

// keep_previous does not retire a stopped previous pool while the service
// is down (nor spin on its passed deadline), also across a restart; after
// the up it is not started again but retired.
func TestKeepPreviousEndsWhileDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		h := newHarness(t, testService(), store)
		h.start()
		h.promoted()
		h.down()
		calls := len(h.router.callLog())
		time.Sleep(2 * time.Hour) // past keep_previous (1h)
		if got := h.router.callLog()[calls:]; len(got) != 0 {
			t.Fatalf("calls while down: %v", got)
		}
		h.stop()
		h = newHarness(t, testService(), store)
		h.start()
		time.Sleep(time.Minute)
		if got := h.router.callLog(); len(got) != 0 {
			t.Fatalf("calls of the restarted controller while down: %v", got)
		}
		if st := h.c.Status(); st.Previous == nil {
			t.Fatal("the previous pool was forgotten while down")
		}
		if err := h.c.Up(context.Background(), ActorUser); err != nil {
			t.Fatal(err)
		}
		h.waitStatus("up, previous retired", time.Minute, func(s Status) bool { return !s.Down && s.Previous == nil })
		if pools := h.rt.pools(); pools[route.Green] != "v2" || pools[route.Blue] != "" {
			t.Fatalf("pools after the up: %v, want only green v2", pools)
		}
	})
}

// What a down and an up refuse, and why.
func TestAdmitDownAndUp(t *testing.T) {
	fx := fixtures()
	down := func(st State, job JobKind) State {
		st.Down = &Down{Since: t0, ID: "dn"}
		if job != "" {
			st.Job = &Job{Seq: st.JobSeq + 1, Kind: job}
		}
		return st
	}
	for _, tt := range []struct {
		name string
		st   State
		kind ObsKind
		want error // nil: admitted
		says string
	}{
		{"down mid-deployment", fx["shifting"], ObsDown, ErrBusy, "abort it first"},
		{"down while post_promote hooks run", fx["post_promote"], ObsDown, ErrBusy, "finishing"},
		{"down while post_retire hooks run", fx["post_retire"], ObsDown, ErrBusy, "post_retire"},
		{"down with nothing live", fx["idle"], ObsDown, ErrNoDeployment, "no version is live"},
		{"down", fx["idle-kept"], ObsDown, nil, ""},
		{"down while stopping", down(fx["idle-kept"], JobDown), ObsDown, ErrDown, "already stopping"},
		{"down while up starts", down(fx["idle-kept"], JobUp), ObsDown, nil, ""},
		{"up when not down", fx["idle-kept"], ObsUp, ErrNotDown, ""},
		{"up while stopping", down(fx["idle-kept"], JobDown), ObsUp, ErrBusy, "still stopping"},
		{"up", down(fx["idle-kept"], ""), ObsUp, nil, ""},
		{"deploy while down", down(fx["idle-kept"], ""), ObsDeploy, ErrDown, "`cutover up web` brings it back first"},
		{"rollback while down", down(fx["idle-kept"], ""), ObsRollback, ErrDown, "cutover up web"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Admit(tt.st, obsFor(tt.kind, tt.st))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.want, tt.says)
			}
		})
	}
}

// A state written before downs existed reads as not down, and a state
// that is not down is written as before (omitempty), so that an older
// cutover reads it too.
func TestDownStateEncoding(t *testing.T) {
	st := fixtures()["idle-kept"]
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"down"`) {
		t.Errorf("a state that is not down carries a down key: %s", b)
	}
	st.Down = &Down{Since: t0, ID: "dn", Up: &Deployment{ID: "up1", Events: []Event{{Type: EventUp}}}}
	b, _ = json.Marshal(st)
	var back State
	if err := json.Unmarshal(b, &back); err != nil || back.Down == nil || back.Down.Up == nil || back.Down.Up.ID != "up1" {
		t.Fatalf("round trip of a down state: %+v %v", back.Down, err)
	}
	// Transition changes a copy of the down, never the state it was given
	// (which Status may be reading).
	st.Down = &Down{Since: t0, ID: "dn"}
	next, _ := Transition(st, obsFor(ObsUp, st))
	if next.Down == nil || next.Down.Up == nil || st.Down.Up != nil {
		t.Errorf("up: next %+v, given %+v; want the up in next only", next.Down, st.Down)
	}
}
