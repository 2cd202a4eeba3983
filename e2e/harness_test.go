// Package e2e drives the real cutover binary the way a user does: it builds
// it, writes config files, starts `cutover serve` as a child process, and
// talks to it only through the CLI and HTTP.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testsupport"
)

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cutover")
	build := exec.Command("go", "build", "-race", "-o", binary, "../cmd/cutover")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cutover:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// env is one test's cutover: a directory with a config, the addresses in
// it, and the running daemon (if started).
type env struct {
	t        *testing.T
	dir      string
	cfg      string
	api      string
	public   string
	preview  string
	daemon   *exec.Cmd
	daemonMu sync.Mutex
	exited   chan struct{}
	logs     *lockedWriter // the daemon's stdout and stderr, interleaved
}

// newEnv writes a config whose strategy has the given steps (YAML flow
// maps, e.g. "{weight: 10, pause: 2s}") and keeps the previous pool for an hour.
func newEnv(t *testing.T, steps ...string) *env {
	t.Helper()
	return newEnvKeep(t, "1h", steps...)
}

// newEnvKeep is newEnv with keep_previous set to keep.
func newEnvKeep(t *testing.T, keep string, steps ...string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.api = "127.0.0.1:" + freePort(t)
	e.public = "127.0.0.1:" + freePort(t)
	e.preview = "127.0.0.1:" + freePort(t)
	faults := filepath.Join(e.dir, "faults.json")
	os.WriteFile(faults, []byte(`{"bad": {"error_rate": 0.3}, "slow": {"latency": "300ms"}, "broken": {"broken": true}, "starting": {"unhealthy": true}}`), 0o644)
	stepYAML := ""
	if len(steps) > 0 {
		stepYAML = "      steps:\n"
		for _, s := range steps {
			stepYAML += "        - " + s + "\n"
		}
	}
	cfg := fmt.Sprintf(`api:
  listen: %s
services:
  web:
    listen: %s
    preview_listen: %s
    instances: 2
    runtime:
      process:
        command: [%q, "demo-app", "--listen", "127.0.0.1:${PORT}", "--version", "${VERSION}", "--faults", %q]
        stop_timeout: 5s
        start_timeout: 30s
    health:
      interval: 200ms
      timeout: 1s
      healthy_threshold: 1
      unhealthy_threshold: 2
    drain_timeout: 3s
    strategy:
%s      analysis:
        interval: 300ms
        max_error_rate: 1%%
        max_p99_latency: 2s
        min_requests: 20
    keep_previous: %s
    quiet_period: 1s
`, e.api, e.public, e.preview, binary, faults, stepYAML, keep)
	e.cfg = filepath.Join(e.dir, "cutover.yaml")
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	return e
}

// start runs `cutover serve` and waits for its API to answer.
func (e *env) start() { e.t.Helper(); e.startWith() }

// startWith is start with more arguments to serve.
func (e *env) startWith(args ...string) {
	e.t.Helper()
	e.daemonMu.Lock()
	defer e.daemonMu.Unlock()
	e.logs = &lockedWriter{}
	cmd := exec.Command(binary, append([]string{"serve", "-c", e.cfg}, args...)...)
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.daemon, e.exited = cmd, make(chan struct{})
	go func(ch chan struct{}) { cmd.Wait(); close(ch) }(e.exited)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + e.api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-e.exited:
			e.t.Fatalf("cutover serve exited during start-up:\n%s", e.logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
	e.t.Fatalf("cutover serve did not answer on %s within 20s:\n%s", e.api, e.logs)
}

// kill9 kills the daemon with SIGKILL, as a crash would.
func (e *env) kill9() {
	e.daemonMu.Lock()
	defer e.daemonMu.Unlock()
	e.daemon.Process.Signal(syscall.SIGKILL)
	<-e.exited
	e.daemon = nil
}

// stop ends the daemon with SIGTERM, then stops instances it left running
// (a clean daemon shutdown keeps them for re-adoption) by their recorded PIDs.
func (e *env) stop() {
	e.daemonMu.Lock()
	if e.daemon != nil {
		e.daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(30 * time.Second):
			e.daemon.Process.Kill()
			<-e.exited
		}
		e.daemon = nil
	}
	e.daemonMu.Unlock()
	killRecordedInstances(e.t, filepath.Join(e.dir, ".cutover"))
	killMarkedInstances(filepath.Join(e.dir, ".cutover"))
	if e.t.Failed() && e.logs != nil {
		e.t.Logf("daemon output:\n%s", e.logs)
	}
}

// killRecordedInstances kills the process groups of the instances recorded
// under stateDir, so no test leaves instances behind.
func killRecordedInstances(t *testing.T, stateDir string) {
	files, _ := filepath.Glob(filepath.Join(stateDir, "instances", "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, pid := range pidsIn(data) {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
}

// killMarkedInstances kills the process groups of the instances that
// carry the mark of stateDir (CUTOVER_MARK, see the process runtime), for
// tests that lose the record file on purpose.
func killMarkedInstances(stateDir string) {
	abs, _ := filepath.Abs(stateDir)
	sum := sha256.Sum256([]byte(abs))
	mark := []byte("CUTOVER_MARK=" + hex.EncodeToString(sum[:8]) + "/")
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if env, err := os.ReadFile("/proc/" + ent.Name() + "/environ"); err == nil && bytes.Contains(env, mark) {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
}

// pidsIn finds every "pid" number in a JSON document, whatever its shape.
func pidsIn(data []byte) []int {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return nil
	}
	var out []int
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if n, ok := c.(float64); ok && k == "pid" && n > 1 {
					out = append(out, int(n))
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}

// lockedWriter is shared with other packages' tests.
type lockedWriter = testsupport.Buffer

// cli runs the cutover binary with args against this env's API and returns
// its exit code and combined output.
func (e *env) cli(args ...string) (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "CUTOVER_API=http://"+e.api)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("cutover %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return code, out.String()
}

// mustCLI runs the CLI and fails the test unless it exits with want.
func (e *env) mustCLI(want int, args ...string) string {
	e.t.Helper()
	code, out := e.cli(args...)
	if code != want {
		e.t.Fatalf("cutover %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// status is the part of `cutover status --json` the tests read.
type status struct {
	Phase string `json:"phase"`
	Live  *struct {
		Color   string `json:"color"`
		Version string `json:"version"`
	} `json:"live"`
	Candidate *struct {
		Color   string `json:"color"`
		Version string `json:"version"`
	} `json:"candidate"`
	Previous *struct {
		Color   string `json:"color"`
		Version string `json:"version"`
		Until   string `json:"until"`
	} `json:"previous"`
	Weights    map[string]float64 `json:"weights"`
	Deployment *struct {
		ID      string `json:"id"`
		Version string `json:"version"`
	} `json:"deployment"`
	Notices []string `json:"notices"`
}

func (e *env) status() status {
	e.t.Helper()
	out := e.mustCLI(0, "status", "web", "--json")
	var st status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	return st
}

// waitFor polls cond until it holds or the timeout passes.
func (e *env) waitFor(what string, timeout time.Duration, cond func(status) bool) status {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := e.status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s; last status %+v", timeout, what, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// traffic is a client that never retries, sending requests to the public
// router from a few keep-alive connections until stopped.
type traffic struct {
	ok, failed atomic.Uint64
	versions   sync.Map // version -> *atomic.Uint64
	lastErr    atomic.Value
	stop       context.CancelFunc
	done       sync.WaitGroup
}

func (e *env) startTraffic(workers int) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{stop: cancel}
	// DisableKeepAlives false, and no retries: net/http's client retries
	// only idempotent requests on reused connections that failed before
	// any byte was written; a POST is never retried, so we send POSTs.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	for range workers {
		tr.done.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+e.public+"/?format=json", strings.NewReader("x"))
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					if err == nil {
						resp.Body.Close()
					}
					return
				}
				if err != nil {
					tr.failed.Add(1)
					tr.lastErr.Store(err.Error())
					time.Sleep(5 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					tr.failed.Add(1)
					tr.lastErr.Store(fmt.Sprintf("status %d from %s", resp.StatusCode, resp.Header.Get("X-Version")))
				} else {
					tr.ok.Add(1)
				}
				v := resp.Header.Get("X-Version")
				n, _ := tr.versions.LoadOrStore(v, new(atomic.Uint64))
				n.(*atomic.Uint64).Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	e.t.Cleanup(tr.halt)
	return tr
}

func (tr *traffic) halt() { tr.stop(); tr.done.Wait() }

func (tr *traffic) served(version string) uint64 {
	n, ok := tr.versions.Load(version)
	if !ok {
		return 0
	}
	return n.(*atomic.Uint64).Load()
}
