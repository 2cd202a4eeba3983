package process

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

// A release's own environment reaches its instances over the configured
// one; the same version with another environment is another release (the
// pool is replaced); and an adopted pool's replacements keep the release's
// environment, which the record carries across a restart.
func TestReleaseEnvironment(t *testing.T) {
	stateDir := t.TempDir()
	a := newHarness(t, testService(1, map[string]string{"MSG": "configured", "KEEP": "yes"}), stateDir, nil)
	ctx := context.Background()
	one := runtime.Release{Version: "v1", Env: map[string]string{"MSG": "one"}}
	ins, err := a.d.Start(ctx, route.Blue, one)
	if err != nil {
		t.Fatal(err)
	}
	if env := getInfo(t, ins[0].Addr).Env; env["MSG"] != "one" || env["KEEP"] != "yes" {
		t.Fatalf("instance env MSG=%q KEEP=%q, want the release's one over the configured, the rest kept", env["MSG"], env["KEEP"])
	}
	again, err := a.d.Start(ctx, route.Blue, runtime.Release{Version: "v1", Env: map[string]string{"MSG": "one"}})
	if err != nil || !slices.Equal(pids(again), pids(ins)) {
		t.Fatalf("the same release started again: pids %v -> %v (%v), want the pool kept", pids(ins), pids(again), err)
	}
	two, err := a.d.Start(ctx, route.Blue, runtime.Release{Version: "v1", Env: map[string]string{"MSG": "two"}})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(pids(two), pids(ins)) || getInfo(t, two[0].Addr).Env["MSG"] != "two" {
		t.Fatalf("v1 with another env kept the old pool (pids %v -> %v)", pids(ins), pids(two))
	}
	a.d.Close()
	for _, in := range two {
		killOnCleanup(t, in.PID)
	}

	b := newHarness(t, testService(1, map[string]string{"MSG": "configured"}), stateDir, nil)
	if _, err := b.d.Adopt(ctx); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(-two[0].PID, syscall.SIGKILL)
	ev := b.rec.WaitPool(t, route.Blue, 10*time.Second, "replacement", func(ev runtimetest.PoolEvent) bool {
		return len(ev.Instances) == 1 && ev.Instances[0].PID != two[0].PID
	})
	if got := getInfo(t, ev.Instances[0].Addr).Env["MSG"]; got != "two" {
		t.Errorf("the replacement of an adopted instance has MSG=%q, want the release's two", got)
	}
}
