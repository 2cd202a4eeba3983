package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A full cycle under load from a client that never retries: first deploy,
// canary promoted, instant rollback to the kept previous pool, and not one
// failed request throughout.
func TestDeployPromoteRollbackUnderLoad(t *testing.T) {
	e := newEnv(t, "{weight: 20, pause: 1s}", "{weight: 60, pause: 1s}")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	st := e.status()
	if st.Phase != "idle" || st.Live == nil || st.Live.Version != "v1" || st.Weights[st.Live.Color] != 100 {
		t.Fatalf("after the first deploy: %+v", st)
	}
	tr := e.startTraffic(4)
	time.Sleep(500 * time.Millisecond)

	out := e.mustCLI(0, "deploy", "web", "v2", "--wait")
	st = e.status()
	if st.Live == nil || st.Live.Version != "v2" || st.Previous == nil || st.Previous.Version != "v1" {
		t.Fatalf("after promoting v2: %+v\n%s", st, out)
	}
	if st.Weights[st.Live.Color] != 100 {
		t.Fatalf("v2 is live but has weight %v", st.Weights)
	}
	if tr.served("v2") == 0 {
		t.Fatal("no request reached v2")
	}

	e.mustCLI(0, "rollback", "web")
	st = e.waitFor("v1 live again", 10*time.Second, func(s status) bool {
		return s.Live != nil && s.Live.Version == "v1" && s.Weights[s.Live.Color] == 100
	})
	v1Before := tr.served("v1")
	time.Sleep(500 * time.Millisecond)
	if tr.served("v1") <= v1Before {
		t.Fatal("v1 serves no traffic after the rollback")
	}
	tr.halt()
	if f := tr.failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed (last: %v); a switch must drop none", f, f+tr.ok.Load(), tr.lastErr.Load())
	}
	t.Logf("%d requests, 0 failed (v1 %d, v2 %d)", tr.ok.Load(), tr.served("v1"), tr.served("v2"))
}

// A release that fails 30% of its requests is rolled back by the analysis,
// `deploy --wait` exits 3, and history says why with the figures.
func TestBadReleaseRolledBack(t *testing.T) {
	e := newEnv(t, "{weight: 20, pause: 30s}", "{weight: 60, pause: 30s}")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	tr := e.startTraffic(4)
	start := time.Now()
	e.mustCLI(3, "deploy", "web", "bad", "--wait")
	took := time.Since(start)
	st := e.status()
	if st.Live == nil || st.Live.Version != "v1" || st.Weights[st.Live.Color] != 100 {
		t.Fatalf("after the rollback v1 should hold all traffic: %+v", st)
	}
	out := e.mustCLI(0, "history", "web", "--json")
	var hist []struct {
		Version string `json:"version"`
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(out), &hist); err != nil {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	if len(hist) != 2 || hist[0].Version != "bad" || hist[0].Outcome != "rolled_back" {
		t.Fatalf("history = %+v", hist)
	}
	if !strings.Contains(hist[0].Reason, "error rate") || !strings.Contains(hist[0].Reason, "%") {
		t.Fatalf("the rollback reason should cite the error rate with figures: %q", hist[0].Reason)
	}
	if took > 25*time.Second {
		t.Fatalf("rollback took %s; the analysis should catch 30%% errors in seconds", took)
	}
	tr.halt()
	t.Logf("rolled back in %s: %s", took, hist[0].Reason)
}

// kill -9 of the daemon in the middle of a canary: on restart the router
// serves the persisted weights, instances were never restarted, and the same
// deployment continues and can be promoted.
func TestKill9MidCanaryResumes(t *testing.T) {
	e := newEnv(t, "{weight: 30}") // a manual gate: holds until promote
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	e.mustCLI(0, "deploy", "web", "v2")
	before := e.waitFor("v2 at 30%", 30*time.Second, func(s status) bool {
		return s.Phase == "shifting" && s.Candidate != nil && s.Weights[s.Candidate.Color] == 30
	})
	pidsBefore := recordedPIDs(t, e.dir)
	e.kill9()

	e.start()
	after := e.status()
	if after.Deployment == nil || after.Deployment.ID != before.Deployment.ID {
		t.Fatalf("deployment after restart = %+v, want %s", after.Deployment, before.Deployment.ID)
	}
	if after.Weights[after.Candidate.Color] != 30 || after.Phase != "shifting" {
		t.Fatalf("after restart: %+v, want shifting at 30%%", after)
	}
	if got := recordedPIDs(t, e.dir); !samePIDs(pidsBefore, got) {
		t.Fatalf("instances were restarted: pids %v before, %v after", pidsBefore, got)
	}
	tr := e.startTraffic(4)
	time.Sleep(time.Second)
	if tr.served("v1") == 0 || tr.served("v2") == 0 {
		t.Fatalf("after restart both colours should serve at 70/30: v1 %d, v2 %d", tr.served("v1"), tr.served("v2"))
	}
	e.mustCLI(0, "promote", "web")
	e.waitFor("v2 promoted", 15*time.Second, func(s status) bool {
		return s.Phase == "idle" && s.Live != nil && s.Live.Version == "v2"
	})
	tr.halt()
	if f := tr.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed after the restart (last: %v)", f, tr.lastErr.Load())
	}
}

func recordedPIDs(t *testing.T, dir string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, ".cutover", "instances", "*.json"))
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pidsIn(data)...)
	}
	if len(pids) == 0 {
		t.Fatal("no instance records found under the state dir")
	}
	return pids
}

func samePIDs(a, b []int) bool {
	seen := map[int]bool{}
	for _, p := range a {
		seen[p] = true
	}
	if len(a) != len(b) {
		return false
	}
	for _, p := range b {
		if !seen[p] {
			return false
		}
	}
	return true
}

// Bad configurations are refused with every problem at file:line, by both
// `cutover validate` and `cutover serve`.
func TestBadConfigRejected(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cutover.yaml")
	os.WriteFile(cfg, []byte(`services:
  web:
    listen: 127.0.0.1:18080
    instances: -1
    runtime:
      process:
        command: ["./app"]
    strategy:
      steps:
        - {weight: 50, pause: 30s}
        - {weight: 20, pause: soon}
    colour: blue
`), 0o644)
	for _, args := range [][]string{{"validate", "-c", cfg}, {"serve", "-c", cfg}} {
		cmd := exec.Command(binary, args...)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Fatalf("cutover %s: err %v, want exit 1\n%s", args[0], err, out)
		}
		for _, want := range []string{"cutover.yaml:4", "instances", "cutover.yaml:11", "cutover.yaml:12", "colour"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("cutover %s output lacks %q:\n%s", args[0], want, out)
			}
		}
	}
}

// The demo runs end to end, exactly as the README tells a newcomer to run it.
func TestDemo(t *testing.T) {
	start := time.Now()
	out, err := exec.Command(binary, "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("cutover demo: %v\n%s", err, out)
	}
	took := time.Since(start)
	for _, want := range []string{"failed requests, v2 switch      0", "rolled back", "v3 first error -> rolled back"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if took > 60*time.Second {
		t.Errorf("demo took %s, promised under 60s", took)
	}
	t.Logf("demo took %s:\n%s", took, out)
}

// demo --keep stays up with v2 live and answers on the URLs it prints;
// Ctrl-C (SIGINT) ends it with exit 0 and leaves no instance behind.
func TestDemoKeep(t *testing.T) {
	cmd := exec.Command(binary, "demo", "--keep")
	out := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	deadline := time.After(90 * time.Second)
	for !strings.Contains(out.String(), "--keep: the daemon is running") {
		select {
		case err := <-exited:
			t.Fatalf("demo --keep exited early (%v):\n%s", err, out)
		case <-deadline:
			t.Fatalf("demo --keep did not settle within 90s:\n%s", out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	var api, dash string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "control" && f[1] == "API" {
			api = f[2]
		}
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "dashboard" {
			dash = f[1]
		}
	}
	if dash != api+"/" {
		t.Errorf("demo printed dashboard %q, want the API's %q", dash, api+"/")
	} else if resp, err := http.Get(dash); err != nil {
		t.Errorf("dashboard %s: %v", dash, err)
	} else {
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(page), `src="/ui/app.js"`) {
			t.Errorf("dashboard %s: %s\n%s", dash, resp.Status, page)
		}
	}
	status := exec.Command(binary, "status", "web", "--json", "--api", api)
	got, err := status.Output()
	if err != nil || !strings.Contains(string(got), `"version": "v2"`) {
		t.Fatalf("status through the printed API %q: %v\n%s", api, err, got)
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo --keep after Ctrl-C: %v\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo --keep did not stop within 30s of SIGINT")
	}
	ps, _ := exec.Command("ps", "-eo", "args").Output()
	for _, line := range strings.Split(string(ps), "\n") {
		if strings.HasPrefix(line, binary+" demo-app") {
			t.Errorf("an instance outlived the demo: %s", line)
		}
	}
}
