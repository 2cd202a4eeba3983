package process

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/runtime/runtimetest"
)

// appPath is the test app (testdata/app), built once per test binary.
var appPath string

func TestMain(m *testing.M) {
	if dir := os.Getenv("CUTOVER_TEST_DAEMON_DIR"); dir != "" {
		os.Exit(fakeDaemon(dir, os.Getenv("CUTOVER_TEST_APP")))
	}
	dir, err := os.MkdirTemp("", "cutover-process-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	appPath = filepath.Join(dir, "app")
	build := exec.Command("go", "build", "-o", appPath, "./testdata/app")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build test app:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testService is a service running the test app with short timeouts.
func testService(instances int, env map[string]string) Options {
	return Options{
		Service:      "web",
		Instances:    instances,
		Command:      []string{appPath, "--listen", "127.0.0.1:${PORT}", "--version", "${VERSION}", "--id=${SERVICE}/${COLOR}/${INSTANCE}"},
		Env:          env,
		StopTimeout:  3 * time.Second,
		StartTimeout: 10 * time.Second,
		Gate:         runtime.GateOptions{Path: "/healthz", Timeout: time.Second},
	}
}

type harness struct {
	d        *Driver
	rec      *runtimetest.Recorder
	stateDir string
	opts     Options
}

// newHarness builds a driver on stateDir ("" = a new temp dir) and makes
// sure every process it ever recorded is gone when the test ends.
func newHarness(t *testing.T, svc Options, stateDir string, tune func(*Options)) *harness {
	t.Helper()
	if stateDir == "" {
		stateDir = t.TempDir()
	}
	rec := runtimetest.NewRecorder()
	opts := svc
	opts.StateDir, opts.Listener = stateDir, rec
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.RestartBackoff, opts.WatchInterval = 20*time.Millisecond, 50*time.Millisecond
	if tune != nil {
		tune(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{d: d, rec: rec, stateDir: stateDir, opts: opts}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, c := range route.Colors {
			_ = d.Stop(ctx, c)
		}
		d.Close()
		killRecorded(t, stateDir)
	})
	return h
}

// killRecorded SIGKILLs the process group of every instance still recorded
// in stateDir, so that a failing test leaves nothing behind.
func killRecorded(t *testing.T, stateDir string) {
	b, err := os.ReadFile(filepath.Join(stateDir, "instances", "web.json"))
	if err != nil {
		return
	}
	var rec records
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Logf("instance record unreadable, nothing to clean: %v", err)
		return
	}
	for _, p := range rec.Pools {
		for _, in := range p.Instances {
			if sameProcess(in.PID, in.StartTicks) {
				_ = syscall.Kill(-in.PID, syscall.SIGKILL)
			}
		}
	}
}

// killOnCleanup SIGKILLs pid's process group when the test ends.
func killOnCleanup(t *testing.T, pid int) {
	st, err := readStat(pid)
	if err != nil {
		return
	}
	t.Cleanup(func() {
		if sameProcess(pid, st.startTicks) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(b))
	return len(b), nil
}

// appInfo is what the test app's GET / answers.
type appInfo struct {
	PID  int               `json:"pid"`
	Args []string          `json:"args"`
	Env  map[string]string `json:"env"`
}

func getInfo(t *testing.T, addr string) appInfo {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	defer resp.Body.Close()
	var info appInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	return info
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	st, err := readStat(pid)
	return err == nil && !dead(st.state)
}

func waitGone(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still alive after %s", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pids(ins []runtime.Instance) []int {
	out := make([]int, len(ins))
	for i, in := range ins {
		out[i] = in.PID
	}
	return out
}

func readAll(t *testing.T, r io.Reader) string {
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeDaemon is what the test binary runs when re-executed as a daemon: it
// starts blue v1 with two instances in stateDir, says "ready" and waits to
// be killed.
func fakeDaemon(stateDir, app string) int {
	appPath = app
	opts := testService(2, nil)
	opts.StateDir = stateDir
	d, err := New(opts)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if _, err := d.Start(context.Background(), route.Blue, runtime.Release{Version: "v1"}); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("ready")
	select {}
}
