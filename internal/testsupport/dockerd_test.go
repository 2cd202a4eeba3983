package testsupport

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDockerdEndsWithItsTestBinary runs a copy of this test binary that
// starts a dockerd and dies without stopping it, as a test binary does on
// a panic or the -timeout: the dockerd must end too, not run on with its
// containers.
func TestDockerdEndsWithItsTestBinary(t *testing.T) {
	if os.Getenv("CUTOVER_ORPHAN_DOCKERD") != "" {
		d, err := LaunchDockerd(DockerdOptions{})
		if err != nil {
			os.Exit(3)
		}
		os.WriteFile(os.Getenv("CUTOVER_ORPHAN_DOCKERD"), []byte(strconv.Itoa(d.PID)+" "+d.dir), 0o600)
		os.Exit(2) // no Stop, no cleanups
	}
	info := filepath.Join(t.TempDir(), "dockerd")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDockerdEndsWithItsTestBinary$")
	cmd.Env = append(os.Environ(), "CUTOVER_ORPHAN_DOCKERD="+info)
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 {
		t.Fatalf("the child did not start its dockerd (exit %d):\n%s", cmd.ProcessState.ExitCode(), out)
	}
	b, err := os.ReadFile(info)
	if err != nil {
		t.Fatal(err)
	}
	pidText, dir, _ := strings.Cut(string(b), " ")
	pid, _ := strconv.Atoi(pidText)
	alive := func() bool {
		stat, err := os.ReadFile("/proc/" + pidText + "/stat")
		if err != nil {
			return false
		}
		// A zombie (state Z) has ended; init may be slow to reap it.
		i := strings.LastIndexByte(string(stat), ')')
		return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
	}
	deadline := time.Now().Add(40 * time.Second)
	for alive() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	ended := !alive()
	if !ended {
		(&Dockerd{PID: pid}).kill()
	}
	unmountUnder(dir)
	os.RemoveAll(dir)
	if !ended {
		t.Fatalf("dockerd %d ran on after the test binary that started it died", pid)
	}
}
