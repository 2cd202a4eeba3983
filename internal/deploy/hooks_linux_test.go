package deploy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hookHelperDir names the environment variable that turns this test binary
// into TestHookDaemonHelper's stand-in daemon.
const hookHelperDir = "CUTOVER_TEST_HOOK_DAEMON_DIR"

// hookLine is the hook the stand-in daemon runs: a shell that records its
// PID, starts a child (as a smoke test script starts curl) that records
// its own, and waits.
const hookLine = `echo $$ > "$HOOK_DIR/sh.pid.tmp" && mv "$HOOK_DIR/sh.pid.tmp" "$HOOK_DIR/sh.pid"
sleep 30 & echo $! > "$HOOK_DIR/child.pid.tmp" && mv "$HOOK_DIR/child.pid.tmp" "$HOOK_DIR/child.pid"
wait`

// TestHookDaemonHelper is not a test: run by TestHooksDieWithTheDaemon with
// hookHelperDir set, it is a daemon that runs a long pre_traffic hook until
// it is killed.
func TestHookDaemonHelper(t *testing.T) {
	dir := os.Getenv(hookHelperDir)
	if dir == "" {
		t.Skip("the stand-in daemon of TestHooksDieWithTheDaemon")
	}
	_, err := runHook(context.Background(), hookLine, []string{"HOOK_DIR=" + dir}, time.Minute)
	t.Fatalf("hook ended before the daemon was killed: %v", err)
}

// TestHooksDieWithTheDaemon: a daemon killed with SIGKILL while a hook runs
// takes the hook's whole process group with it, so the next daemon, which
// runs the hook again, does not run it alongside a leftover (issue 9).
func TestHooksDieWithTheDaemon(t *testing.T) {
	dir := t.TempDir()
	daemon := exec.Command(os.Args[0], "-test.run=^TestHookDaemonHelper$", "-test.count=1")
	daemon.Env = append(os.Environ(), hookHelperDir+"="+dir)
	var out bytes.Buffer
	daemon.Stdout, daemon.Stderr = &out, &out
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = daemon.Process.Kill(); _ = daemon.Wait() })

	pids := map[string]int{}
	deadline := time.Now().Add(20 * time.Second)
	for _, name := range []string{"sh", "child"} {
		for pids[name] == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("hook did not start: %s", out.String())
			}
			if b, err := os.ReadFile(filepath.Join(dir, name+".pid")); err == nil {
				pids[name], _ = strconv.Atoi(strings.TrimSpace(string(b)))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Cleanup(func() { // a test that fails must not leave them behind
		for name, pid := range pids {
			if alive(pid) && cmdlineHas(pid, map[string]string{"sh": "sh", "child": "sleep"}[name]) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	for name, pid := range pids {
		if !alive(pid) {
			t.Fatalf("hook %s (pid %d) not running before the kill", name, pid)
		}
	}

	if err := daemon.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = daemon.Wait()
	killed := time.Now()
	for name, pid := range pids {
		for alive(pid) {
			if time.Since(killed) > 2*time.Second {
				t.Fatalf("hook %s (pid %d) still running 2s after its daemon was killed", name, pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// alive reports whether pid is a process that has not exited; a zombie
// (exited, not yet reaped by its new parent) counts as gone.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces, so look after the last ')'.
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	fields := strings.Fields(string(rest))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

func cmdlineHas(pid int, word string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(b, []byte(word))
}

// TestHookTimeoutKillsItsGroup: through the wrapper that lets a hook die
// with the daemon, a timed-out hook still takes its children down with it
// at once, and a hook's exit status still reaches the error.
func TestHookTimeoutKillsItsGroup(t *testing.T) {
	dir := t.TempDir()
	env := []string{"HOOK_DIR=" + dir}
	start := time.Now()
	_, err := runHook(context.Background(), hookLine, env, time.Second)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("slow hook: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("timeout took %v", took)
	}
	for _, name := range []string{"sh", "child"} {
		b, err := os.ReadFile(filepath.Join(dir, name+".pid"))
		if err != nil {
			t.Fatalf("hook did not record its %s: %v", name, err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		for deadline := time.Now().Add(2 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("hook %s (pid %d) outlived its timeout", name, pid)
			}
		}
	}
	if _, err := runHook(context.Background(), `echo "it's $1-less"; exit 7`, nil, time.Minute); err == nil ||
		!strings.Contains(err.Error(), "exit status 7") || !strings.Contains(err.Error(), "it's -less") {
		t.Errorf("failing hook: %v", err)
	}
}
