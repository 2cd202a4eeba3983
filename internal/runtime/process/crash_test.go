package process

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
)

// TestInstancesSurviveDaemonKill runs a daemon in a child process, kills it
// with SIGKILL, and checks that its instances kept running, kept writing
// their output, and were adopted by the next daemon.
func TestInstancesSurviveDaemonKill(t *testing.T) {
	stateDir := t.TempDir()
	t.Cleanup(func() { killRecorded(t, stateDir) })
	daemon := exec.Command(os.Args[0], "-test.run=^$")
	daemon.Env = append(os.Environ(), "CUTOVER_TEST_DAEMON_DIR="+stateDir, "CUTOVER_TEST_APP="+appPath)
	out, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Process.Kill(); daemon.Wait() })
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Fatalf("daemon said %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon not ready")
	}
	a := newHarness(t, testService(2, nil), stateDir, nil)
	rec, err := a.d.readRecords()
	if err != nil || len(rec.Pools) != 1 || len(rec.Pools[0].Instances) != 2 {
		t.Fatalf("daemon's record: %+v, %v", rec, err)
	}
	a.d.Close()
	var before []int
	for _, in := range rec.Pools[0].Instances {
		before = append(before, in.PID)
	}

	daemon.Process.Kill() // SIGKILL: no chance to clean up
	daemon.Wait()
	time.Sleep(200 * time.Millisecond)

	b := newHarness(t, testService(2, nil), stateDir, nil)
	adopted, err := b.d.Adopt(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pids(adopted), before) {
		t.Fatalf("adopted %v after the daemon died, want the same pids %v", pids(adopted), before)
	}
	for _, in := range adopted {
		if info := getInfo(t, in.Addr); info.PID != in.PID {
			t.Errorf("%s answers from pid %d", in.ID, info.PID)
		}
	}
	// Output written after the daemon died still reaches the log: stopping
	// makes the app print while it drains.
	if err := b.d.Stop(context.Background(), route.Blue); err != nil {
		t.Fatal(err)
	}
	for _, pid := range before {
		if alive(pid) {
			t.Errorf("pid %d alive after Stop", pid)
		}
	}
	log, err := os.ReadFile(b.d.logPath(route.Blue, 1))
	if err != nil || !strings.Contains(string(log), "app: SIGTERM, draining") {
		t.Errorf("output after the daemon's death is missing (%v):\n%s", err, log)
	}
}
