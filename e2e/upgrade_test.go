package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonPID is the pid the running daemon wrote beside its store.
func (e *env) daemonPID() int {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.stateDir(), "cutover.db.pid"))
	if err != nil {
		e.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		e.t.Fatalf("pid file: %q", b)
	}
	return pid
}

// instancePIDs are the pids in the instance record, sorted.
func (e *env) instancePIDs() []int {
	e.t.Helper()
	b, err := os.ReadFile(e.recordFile())
	if err != nil {
		e.t.Fatal(err)
	}
	pids := pidsIn(b)
	sort.Ints(pids)
	return pids
}

// stopUpgraded ends the daemon an upgrade left running (not a child of the
// test), by the pid in its pid file.
func (e *env) stopUpgraded() {
	b, err := os.ReadFile(filepath.Join(e.stateDir(), "cutover.db.pid"))
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 1 || (e.daemon != nil && pid == e.daemon.Process.Pid) {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// running reports whether pid is a running (not zombie) process.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// 20 upgrades in a row under load: no request fails, no instance restarts,
// and each old daemon exits.
func TestUpgradeUnderLoadLosesNoRequest(t *testing.T) {
	e := newEnv(t)
	e.start()
	t.Cleanup(e.stopUpgraded)
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	instances := e.instancePIDs()
	load := startRawLoad(t, e.public, loadWorkers, loadInterval)
	load.waitAnswers(t, time.Now(), 50, 10*time.Second)

	const upgrades = 20
	var olds []int
	start := time.Now()
	for i := range upgrades {
		old := e.daemonPID()
		out := e.mustCLI(0, "upgrade")
		if !strings.Contains(out, "upgraded") {
			t.Fatalf("upgrade %d: %s", i+1, out)
		}
		if now := e.daemonPID(); now == old {
			t.Fatalf("upgrade %d: the pid file still names %d", i+1, old)
		}
		olds = append(olds, old)
		load.waitAnswers(t, time.Now(), 20, 10*time.Second)
	}
	took := time.Since(start)
	e.mustServe("v1")
	load.halt()
	t.Logf("%d upgrades in %s under %d req/s: %s", upgrades, took.Round(time.Millisecond), int(time.Second/loadInterval)*loadWorkers, load)
	if n := load.failed.Load() + load.refused.Load(); n != 0 {
		t.Errorf("%d requests failed over %d upgrades, want 0: %s", n, upgrades, load)
	}
	if got := e.instancePIDs(); !reflect.DeepEqual(got, instances) {
		t.Errorf("instance pids %v after the upgrades, want %v unchanged", got, instances)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range olds {
		for running(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if running(pid) {
			t.Errorf("old daemon %d still runs after its upgrade", pid)
		}
	}
	if st := e.status(); st.Live == nil || st.Live.Version != "v1" || st.Phase != "idle" {
		t.Errorf("status after the upgrades: %+v", st)
	}
}

// An upgrade to a binary that exits at start changes nothing: the running
// daemon serves on, no request fails, and the CLI says why.
func TestUpgradeToABinaryThatExitsKeepsTheOldOne(t *testing.T) {
	e := newEnv(t)
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	bad := filepath.Join(e.dir, "broken-cutover")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	load := startRawLoad(t, e.public, loadWorkers, loadInterval)
	load.waitAnswers(t, time.Now(), 50, 10*time.Second)
	old := e.daemonPID()
	out := e.mustCLI(1, "upgrade", "--binary", bad)
	if !strings.Contains(out, "exited before taking over: exit status 1") || !strings.Contains(out, "keeps serving") {
		t.Errorf("upgrade output does not say why:\n%s", out)
	}
	load.waitAnswers(t, time.Now(), 50, 10*time.Second)
	if e.daemonPID() != old || !running(old) {
		t.Fatalf("the running daemon %d was replaced or stopped", old)
	}
	// Its controllers still work: a deployment goes through.
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	load.waitAnswers(t, time.Now(), 20, 10*time.Second)
	load.halt()
	t.Logf("failed upgrade: %s", load)
	if n := load.failed.Load() + load.refused.Load(); n != 0 {
		t.Errorf("%d requests failed, want 0: %s", n, load)
	}
}
