package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testsupport"

	"github.com/cutover/cutover/internal/api/client"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/daemon"
	"github.com/cutover/cutover/internal/demo"
	"github.com/cutover/cutover/internal/deploy"
)

// appEnv, when set in the environment, makes the test binary run the demo
// instance app instead of the tests, so process-runtime tests have a real
// child process without building the cutover binary.
const appEnv = "CUTOVER_DAEMON_TEST_APP"

func TestMain(m *testing.M) {
	if os.Getenv(appEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		code := demo.App(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// freeAddr returns 127.0.0.1:port with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// instance is a static-runtime instance: an HTTP server on 127.0.0.1 that
// answers with its version and counts what it served.
type instance struct {
	addr string
	hits atomic.Int64
}

func newInstance(t *testing.T, version string) *instance {
	t.Helper()
	in := &instance{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		n := in.hits.Add(1)
		w.Header().Set("X-Version", version)
		fmt.Fprintf(w, "%s %d", version, n)
	}))
	t.Cleanup(srv.Close)
	in.addr = srv.Listener.Addr().String()
	return in
}

// spec is what varies between the tests' configuration files.
type spec struct {
	APIListen string // default 127.0.0.1:0
	TokenFile string
	Listen    string // public listener
	Runtime   string // YAML under runtime:, indented 6 spaces
	Steps     string // YAML list items under steps:, indented 8 spaces; "" for all at once
	Instances int
}

func (s spec) yaml(stateDir string) string {
	if s.APIListen == "" {
		s.APIListen = "127.0.0.1:0"
	}
	if s.Instances == 0 {
		s.Instances = 1
	}
	steps := ""
	if s.Steps != "" {
		steps = "      steps:\n" + s.Steps
	}
	token := ""
	if s.TokenFile != "" {
		token = fmt.Sprintf("  token_file: %q\n", s.TokenFile)
	}
	return fmt.Sprintf(`api:
  listen: %s
%sstate_dir: %q
services:
  web:
    listen: %s
    instances: %d
    runtime:
%s    health:
      interval: 100ms
      timeout: 1s
      healthy_threshold: 1
      unhealthy_threshold: 2
    drain_timeout: 2s
    strategy:
%s      analysis:
        interval: 200ms
        min_requests: 10
    keep_previous: 1h
    quiet_period: 1s
`, s.APIListen, token, stateDir, s.Listen, s.Instances, s.Runtime, steps)
}

// staticRuntime is the runtime YAML for fixed addresses per version.
func staticRuntime(versions map[string]*instance) string {
	var b strings.Builder
	b.WriteString("      static:\n        versions:\n")
	for v, in := range versions {
		fmt.Fprintf(&b, "          %s: [%q]\n", v, in.addr)
	}
	return b.String()
}

// processRuntime runs the demo app (this test binary) as instances.
func processRuntime(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`      process:
        command: [%q, "--listen", "127.0.0.1:${PORT}", "--version", "${VERSION}"]
        env: {%s: "1"}
        stop_timeout: 5s
        start_timeout: 20s
`, exe, appEnv)
}

// fixture is one test's configuration file and state directory.
type fixture struct {
	t        *testing.T
	dir      string
	path     string
	stateDir string
	spec     spec
}

func newFixture(t *testing.T, s spec) *fixture {
	t.Helper()
	dir := t.TempDir()
	if s.Listen == "" {
		s.Listen = freeAddr(t)
	}
	f := &fixture{t: t, dir: dir, path: filepath.Join(dir, "cutover.yaml"), stateDir: filepath.Join(dir, "state"), spec: s}
	f.write(s)
	t.Cleanup(func() { killRecordedInstances(f.stateDir) })
	return f
}

// write replaces the configuration file.
func (f *fixture) write(s spec) {
	f.t.Helper()
	f.writeRaw(s.yaml(f.stateDir))
}

func (f *fixture) writeRaw(text string) {
	f.t.Helper()
	if err := os.WriteFile(f.path, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// running is a daemon run in this process.
type running struct {
	t      *testing.T
	c      *client.Client
	url    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// tryStart runs a daemon on the fixture's file and returns once its API is
// up, or with Run's error if Run ends first.
func (f *fixture) tryStart(opts daemon.Options) (*running, error) {
	f.t.Helper()
	return f.tryStartWith(opts, nil)
}

// tryStartWith is tryStart with a change to the loaded configuration, for
// configurations the file validation would refuse.
func (f *fixture) tryStartWith(opts daemon.Options, change func(*config.Config)) (*running, error) {
	f.t.Helper()
	cfg, err := config.Load(f.path)
	if err != nil {
		f.t.Fatalf("config: %v", err)
	}
	if change != nil {
		change(cfg)
	}
	r := &running{t: f.t, logs: &syncBuffer{}, done: make(chan error, 1)}
	opts.Logger = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ready := make(chan string, 1)
	opts.Ready = func(u string) { ready <- u }
	d, err := daemon.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	select {
	case r.url = <-ready:
	case err := <-r.done:
		cancel()
		return nil, err
	case <-time.After(30 * time.Second):
		cancel()
		f.t.Fatalf("daemon not ready within 30s:\n%s", r.logs)
	}
	r.c = client.New(r.url, "", nil)
	f.t.Cleanup(func() {
		if err := r.stop(); err != nil {
			f.t.Errorf("daemon Run: %v", err)
		}
		if f.t.Failed() {
			f.t.Logf("daemon log:\n%s", r.logs)
		}
	})
	return r, nil
}

func (f *fixture) start(opts daemon.Options) *running {
	f.t.Helper()
	r, err := f.tryStart(opts)
	if err != nil {
		f.t.Fatalf("daemon did not start: %v", err)
	}
	return r
}

// stop cancels the run and returns Run's result.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(60 * time.Second):
			r.err = fmt.Errorf("Run did not return within 60s of cancel")
		}
	})
	return r.err
}

func (r *running) status() deploy.Status {
	r.t.Helper()
	st, err := r.c.Status(context.Background(), "web")
	if err != nil {
		r.t.Fatalf("status: %v", err)
	}
	return st
}

// waitFor polls the status until cond holds.
func (r *running) waitFor(what string, timeout time.Duration, cond func(deploy.Status) bool) deploy.Status {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := r.status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out after %s waiting for %s; status %+v\nlog:\n%s", timeout, what, st, r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *running) deploy(version, strategy string) deploy.Deployment {
	r.t.Helper()
	// Status reports idle as soon as a deployment is decided, while its
	// post_traffic hooks or a demoted pool's drain may still run; a new
	// deployment is refused until they end, so retry that refusal briefly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := r.c.Deploy(context.Background(), "web", version, strategy)
		if err == nil {
			return d
		}
		if !strings.Contains(err.Error(), "is finishing") || time.Now().After(deadline) {
			r.t.Fatalf("deploy %s: %v", version, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deployLive deploys version and waits until it is live and idle.
func (r *running) deployLive(version, strategy string) deploy.Status {
	r.t.Helper()
	r.deploy(version, strategy)
	return r.waitFor(version+" live", 30*time.Second, func(st deploy.Status) bool {
		return st.Phase == deploy.PhaseIdle && st.Deployment == nil && st.Live != nil && st.Live.Version == version
	})
}

func (r *running) metrics() string {
	r.t.Helper()
	var b bytes.Buffer
	if err := r.c.Metrics(context.Background(), &b); err != nil {
		r.t.Fatalf("metrics: %v", err)
	}
	return b.String()
}

// get sends one request to the public listener and returns the version
// that answered (from X-Version) and the body.
func get(t *testing.T, addr string) (version, body string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/?format=json")
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", addr, resp.StatusCode, b)
	}
	return resp.Header.Get("X-Version"), string(b)
}

// versions sends n requests and counts the answering versions.
func versions(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		v, _ := get(t, addr)
		out[v]++
	}
	return out
}

// apiError asserts err is an API error with the status and code.
func apiError(t *testing.T, what string, err error, status int, code string) *client.Error {
	t.Helper()
	ae, ok := err.(*client.Error)
	if !ok {
		t.Fatalf("%s: got %T %v, want an API error %d %s", what, err, err, status, code)
	}
	if ae.Status != status || ae.Code != code {
		t.Fatalf("%s: got %d %s (%s), want %d %s", what, ae.Status, ae.Code, ae.Message, status, code)
	}
	return ae
}

// recordedPIDs reads the process runtime's record of the service's
// instances, by colour.
func recordedPIDs(t *testing.T, stateDir string) map[string][]int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stateDir, "instances", "web.json"))
	if err != nil {
		t.Fatalf("instance records: %v", err)
	}
	var rec struct {
		Pools []struct {
			Color     string `json:"color"`
			Instances []struct {
				PID int `json:"pid"`
			} `json:"instances"`
		} `json:"pools"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("instance records: %v\n%s", err, data)
	}
	out := map[string][]int{}
	for _, p := range rec.Pools {
		for _, in := range p.Instances {
			out[p.Color] = append(out[p.Color], in.PID)
		}
	}
	return out
}

// killRecordedInstances kills the process groups of instances this test's
// daemons started and left behind (only on failure paths: the daemons are
// run with StopInstancesOnExit).
func killRecordedInstances(stateDir string) {
	data, err := os.ReadFile(filepath.Join(stateDir, "instances", "web.json"))
	if err != nil {
		return
	}
	var rec struct {
		Pools []struct {
			Instances []struct {
				PID int `json:"pid"`
			} `json:"instances"`
		} `json:"pools"`
	}
	if json.Unmarshal(data, &rec) != nil {
		return
	}
	for _, p := range rec.Pools {
		for _, in := range p.Instances {
			if in.PID > 1 {
				syscall.Kill(-in.PID, syscall.SIGKILL)
			}
		}
	}
}

// syncBuffer is shared with other packages' tests.
type syncBuffer = testsupport.Buffer

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
