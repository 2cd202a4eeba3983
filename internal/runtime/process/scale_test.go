package process

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
)

// Scaling up keeps the running instances and reports the new ones only
// once all of them passed their health check; scaling down reports the
// removed ones gone first, calls drained with their IDs while they still
// run, then stops them; later pools get the new size.
func TestScaleUpAndDown(t *testing.T) {
	h := newHarness(t, testService(2, nil), "", nil)
	ctx := context.Background()
	first, err := h.d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.d.Scale(ctx, 4, nil); err != nil {
		t.Fatal(err)
	}
	up := h.d.Instances(route.Blue)
	if len(up) != 4 || !slices.Equal(pids(up[:2]), pids(first)) {
		t.Fatalf("after scaling to 4: %v, want the first two (%v) kept and two more", pids(up), pids(first))
	}
	// The listener never saw a pool of 3: the new instances join together.
	for _, ev := range h.rec.PoolEvents() {
		if ev.Color == route.Blue && len(ev.Instances) == 3 {
			t.Errorf("a pool of 3 was reported while scaling 2 -> 4: %+v", ev)
		}
	}
	var sawDrain []string
	err = h.d.Scale(ctx, 1, func(_ context.Context, ids []string) {
		sawDrain = ids
		last, _ := h.rec.Last(route.Blue)
		if len(last.Instances) != 1 {
			t.Errorf("when drained is called the pool reported has %d instances, want 1", len(last.Instances))
		}
		for _, in := range up[1:] {
			if !alive(in.PID) {
				t.Errorf("removed instance %s was stopped before it drained", in.ID)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"web-blue-2", "web-blue-3", "web-blue-4"}; !slices.Equal(sawDrain, want) {
		t.Errorf("drained with %v, want %v", sawDrain, want)
	}
	for _, in := range up[1:] {
		waitGone(t, in.PID, 5*time.Second)
	}
	if got := h.d.Instances(route.Blue); len(got) != 1 || got[0].PID != first[0].PID {
		t.Errorf("after scaling to 1: %v", pids(got))
	}
	green, err := h.d.Start(ctx, route.Green, runtime.Release{Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(green) != 1 {
		t.Errorf("a pool started after scaling to 1 has %d instances", len(green))
	}
	// A slot removed by the scale is not replaced by its supervisor.
	time.Sleep(200 * time.Millisecond)
	if got := h.d.Instances(route.Blue); len(got) != 1 {
		t.Errorf("blue has %d instances some time after the scale-down, want 1", len(got))
	}
}

// A scale-up whose new instance never becomes healthy stops what it
// started, keeps the pool's size and names the instance; the pool's
// reported membership never changed.
func TestScaleUpThatFailsKeepsThePool(t *testing.T) {
	svc := testService(2, map[string]string{"APP_NEVER_HEALTHY_3": "1"})
	h := newHarness(t, svc, "", func(o *Options) { o.StartTimeout = 2 * time.Second })
	ctx := context.Background()
	first, err := h.d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	events := len(h.rec.PoolEvents())
	err = h.d.Scale(ctx, 3, nil)
	if err == nil || !strings.Contains(err.Error(), "web-blue-3") {
		t.Fatalf("scale to 3 with a slot that is never healthy: %v, want an error naming web-blue-3", err)
	}
	if got := h.d.Instances(route.Blue); !slices.Equal(pids(got), pids(first)) {
		t.Errorf("after a failed scale-up blue runs %v, want %v", pids(got), pids(first))
	}
	if evs := h.rec.PoolEvents()[events:]; len(evs) != 0 {
		t.Errorf("a failed scale-up reported pools: %+v", evs)
	}
	rec, err := h.d.readRecords()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rec.Pools {
		if p.Slots != 2 || len(p.Instances) != 2 {
			t.Errorf("record after a failed scale-up: %d slots, %d instances, want 2 and 2", p.Slots, len(p.Instances))
		}
	}
}
