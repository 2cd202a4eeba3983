package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// Scaling a pool by reload under load: `instances` 2 -> 4 -> 1 while a
// client that never retries sends requests on raw keep-alive connections.
// No request fails; the new instances are running and recorded after the
// scale-up, and the removed ones are stopped after the scale-down.
func TestReloadScalesInstancesUnderLoad(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	live := e.status().Live.Color
	load := startRawLoad(t, e.public, loadWorkers, loadInterval)
	load.waitAnswers(t, time.Now(), 50, 10*time.Second)

	before := e.recordedPIDs(live)
	if len(before) != 2 {
		t.Fatalf("%s runs %d recorded instances before scaling, want 2: %v", live, len(before), before)
	}
	start := time.Now()
	e.editConfig("instances: 2", "instances: 4")
	e.mustCLI(0, "reload")
	up := e.recordedPIDs(live)
	if len(up) != 4 {
		t.Fatalf("after scaling to 4, %s has %d recorded instances: %v", live, len(up), up)
	}
	for _, pid := range before {
		if !slices.Contains(up, pid) {
			t.Errorf("instance pid %d was replaced by the scale-up; it should keep running", pid)
		}
	}
	for _, pid := range up {
		if !running(pid) {
			t.Errorf("recorded instance pid %d is not running", pid)
		}
	}
	load.waitAnswers(t, time.Now(), 50, 10*time.Second)

	e.editConfig("instances: 4", "instances: 1")
	e.mustCLI(0, "reload")
	down := e.recordedPIDs(live)
	if len(down) != 1 || down[0] != up[0] {
		t.Fatalf("after scaling to 1, %s records %v, want only the first slot's %d", live, down, up[0])
	}
	for _, pid := range up[1:] {
		deadline := time.Now().Add(10 * time.Second)
		for running(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if running(pid) {
			t.Errorf("removed instance pid %d still runs after the scale-down", pid)
		}
	}
	load.waitAnswers(t, time.Now(), 50, 10*time.Second)
	took := time.Since(start)
	load.halt()
	t.Logf("scaled 2 -> 4 -> 1 by reload in %s under %d req/s: %s", took.Round(time.Millisecond),
		int(time.Second/loadInterval)*loadWorkers, load)
	if n := load.failed.Load() + load.refused.Load(); n != 0 {
		t.Errorf("%d requests failed while scaling, want 0: %s", n, load)
	}

	// The size applies to the next pool too: a deployment starts one instance.
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	if got := e.recordedPIDs(e.status().Live.Color); len(got) != 1 {
		t.Errorf("a deployment after scaling to 1 started %d instances: %v", len(got), got)
	}
}

// recordedPIDs are the pids the instance record lists for colour c, by slot.
func (e *env) recordedPIDs(c string) []int {
	e.t.Helper()
	b, err := os.ReadFile(e.recordFile())
	if err != nil {
		e.t.Fatal(err)
	}
	var rec struct {
		Pools []struct {
			Color     json.RawMessage `json:"color"`
			Instances []struct {
				Slot int `json:"slot"`
				PID  int `json:"pid"`
			} `json:"instances"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		e.t.Fatalf("instance record: %v\n%s", err, b)
	}
	var out []int
	for _, p := range rec.Pools {
		if string(p.Color) != fmt.Sprintf("%q", c) {
			continue
		}
		slices.SortFunc(p.Instances, func(a, b struct {
			Slot int `json:"slot"`
			PID  int `json:"pid"`
		}) int {
			return a.Slot - b.Slot
		})
		for _, in := range p.Instances {
			out = append(out, in.PID)
		}
	}
	return out
}
