package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/api"
	"github.com/cutover/cutover/internal/api/apitest"
	"github.com/cutover/cutover/internal/cli"
	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/route"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// t0 is the fixed time of the canned state, so that tables are stable.
var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// daemon serves the API with b on 127.0.0.1:0 and returns its URL.
func daemon(t *testing.T, b api.Backend, opts api.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.NewServer(b, opts).Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

type result struct {
	code           int
	stdout, stderr string
}

// run calls the CLI in-process with CUTOVER_API=url and the given token.
func run(t *testing.T, url, token string, args ...string) result {
	t.Helper()
	return runWith(t, url, token, cli.Commands{}, args...)
}

func runWith(t *testing.T, url, token string, cmds cli.Commands, args ...string) result {
	t.Helper()
	env := map[string]string{"CUTOVER_API": url, "CUTOVER_TOKEN": token, "TZ": "UTC"}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := cli.MainWith(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr, cmds)
	return result{code, stdout.String(), stderr.String()}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenIn(t, "testdata", name, got)
}

// goldenIn compares got with dir/name.golden (rewriting it with -update).
func goldenIn(t *testing.T, dir, name, got string) {
	t.Helper()
	path := filepath.Join(dir, name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// cannedBackend has web mid-deployment with an analysis, api idle with a
// previous pool kept warm.
func cannedBackend() *apitest.Backend {
	b := apitest.New()
	b.SetStatus(deploy.Status{
		Service:   "web",
		Phase:     deploy.PhaseShifting,
		Live:      &deploy.PoolRef{Color: route.Blue, Version: "v1"},
		Candidate: &deploy.PoolRef{Color: route.Green, Version: "v2"},
		Weights:   map[string]float64{"blue": 87.5, "green": 12.5},
		Deployment: &deploy.DeploymentRef{ID: "d-42", Version: "v2", Strategy: "steps", Step: 1, Steps: 3,
			StartedAt: t0, StepUntil: t0.Add(30 * time.Second)},
		Analysis: &deploy.Verdict{Result: deploy.ResultInconclusive, Reason: "green 12 requests < 50 needed",
			Candidate: deploy.Figures{Color: route.Green, Requests: 12, RPS: 4, P99: 30 * time.Millisecond},
			Baseline:  deploy.Figures{Color: route.Blue, Requests: 88, RPS: 29.3, ErrorRate: 0.011, P99: 45 * time.Millisecond}},
	})
	b.SetStatus(deploy.Status{
		Service:  "api",
		Phase:    deploy.PhaseIdle,
		Live:     &deploy.PoolRef{Color: route.Green, Version: "2026.03.1"},
		Previous: &deploy.PreviousRef{Color: route.Blue, Version: "2026.02.7", Until: t0.Add(time.Hour)},
		Weights:  map[string]float64{"blue": 0, "green": 100},
	})
	b.SetHistory("api", []deploy.Deployment{
		{ID: "d-41", Service: "api", Version: "2026.03.1", FromVersion: "2026.02.7", Color: route.Green, Strategy: "steps",
			StartedAt: t0.Add(-2 * time.Hour), EndedAt: t0.Add(-2*time.Hour + 95*time.Second), Outcome: deploy.OutcomePromoted},
		{ID: "d-40", Service: "api", Version: "2026.03.0", FromVersion: "2026.02.7", Color: route.Green, Strategy: "all-at-once",
			StartedAt: t0.Add(-26 * time.Hour), EndedAt: t0.Add(-26*time.Hour + 41*time.Second), Outcome: deploy.OutcomeRolledBack,
			Reason: "green error rate 4.9% (n=1204) vs blue 0.1% (n=1187),\nabove max 1%"},
		{ID: "d-39", Service: "api", Version: "2026.02.7", Color: route.Blue, StartedAt: t0.Add(-50 * time.Hour),
			EndedAt: t0.Add(-50*time.Hour + 3*time.Second), Outcome: deploy.OutcomeFailed, Reason: "health gate for blue: connection refused"},
	})
	return b
}

func TestStatus(t *testing.T) {
	url := daemon(t, cannedBackend(), api.Options{})
	r := run(t, url, "", "status")
	if r.code != 0 {
		t.Fatalf("status: %d %s", r.code, r.stderr)
	}
	golden(t, "status_all", r.stdout)

	r = run(t, url, "", "status", "web")
	if r.code != 0 {
		t.Fatalf("status web: %d %s", r.code, r.stderr)
	}
	golden(t, "status_web", r.stdout)

	// --json after the argument prints exactly the daemon's Status.
	r = run(t, url, "", "status", "api", "--json")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || r.code != 0 {
		t.Fatalf("status api --json: %d %v %q", r.code, err, r.stdout)
	}
	for key, want := range map[string]string{
		"service": `"api"`, "phase": `"idle"`, "candidate": "null", "deployment": "null",
		"live":    `{"color":"green","version":"2026.03.1"}`,
		"weights": `{"blue":0,"green":100}`,
	} {
		var got bytes.Buffer
		_ = json.Compact(&got, raw[key])
		if got.String() != want {
			t.Errorf("status --json %s = %s, want %s", key, got.String(), want)
		}
	}
	r = run(t, url, "", "--api", url, "status", "--json")
	var all []deploy.Status
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil || len(all) != 2 || all[1].Deployment.ID != "d-42" {
		t.Fatalf("status --json (all): %v %q", err, r.stdout)
	}
}

func TestHistory(t *testing.T) {
	url := daemon(t, cannedBackend(), api.Options{})
	r := run(t, url, "", "history", "api")
	if r.code != 0 {
		t.Fatalf("history: %d %s", r.code, r.stderr)
	}
	golden(t, "history", r.stdout)

	r = run(t, url, "", "history", "--limit", "1", "api", "--json")
	var ds []deploy.Deployment
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil || len(ds) != 1 || ds[0].ID != "d-41" {
		t.Fatalf("history --limit 1 --json: %v %q", err, r.stdout)
	}
	if r := run(t, url, "", "history", "web"); r.code != 0 || !strings.Contains(r.stdout, "no deployments") {
		t.Errorf("empty history: %+v", r)
	}
}

func TestValidate(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	testdata := filepath.Join(wd, "testdata")
	t.Chdir(t.TempDir())
	bad := `api:
  listen: 0.0.0.0:7070
services:
  Web:
    listen: 127.0.0.1:8080
    runtime: {process: {command: [./app]}}
    health: {interval: -1s}
    strategy:
      steps:
        - {weight: 150, pause: 30s}
`
	good := `services:
  web:
    listen: 127.0.0.1:8080
    runtime: {static: {versions: {v1: ["127.0.0.1:9001"]}}}
  api:
    listen: 127.0.0.1:8081
    runtime: {process: {command: [./app, --port, "${PORT}"]}}
`
	if err := os.WriteFile("cutover.yaml", []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("good.yaml", []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, "", "", "validate")
	if r.code != 1 || !strings.Contains(r.stderr, "cutover.yaml is invalid") {
		t.Fatalf("validate bad: %+v", r)
	}
	if n := strings.Count(r.stdout, "\n"); n < 3 {
		t.Errorf("want every problem, one per line; got %d:\n%s", n, r.stdout)
	}
	goldenIn(t, testdata, "validate_invalid", r.stdout)

	r = run(t, "", "", "validate", "--json")
	var rep struct {
		Valid    bool
		Problems []struct {
			File, Key, Message string
			Line               int
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 || rep.Valid || len(rep.Problems) < 3 {
		t.Fatalf("validate --json: %d %v %s", r.code, err, r.stdout)
	}
	for _, p := range rep.Problems {
		if p.File != "cutover.yaml" || p.Line == 0 || p.Message == "" {
			t.Errorf("problem without file:line or message: %+v", p)
		}
	}

	r = run(t, "", "", "validate", "-c", "good.yaml")
	if r.code != 0 {
		t.Fatalf("validate good: %+v", r)
	}
	goldenIn(t, testdata, "validate_valid", r.stdout)

	if r := run(t, "", "", "validate", "-c", "missing.yaml"); r.code != 1 || !strings.HasPrefix(r.stderr, "cutover: ") {
		t.Errorf("missing file: %+v", r)
	}
}

func TestExitCodesAndErrors(t *testing.T) {
	b := cannedBackend()
	url := daemon(t, b, api.Options{Token: "tok"})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name       string
		url, token string
		args       []string
		code       int
		stderrHas  string
		stdoutHas  string
	}{
		{"no command", url, "", nil, 2, "usage: cutover", ""},
		{"unknown command", url, "", []string{"frobnicate"}, 2, `unknown command "frobnicate"`, ""},
		{"deploy missing version", url, "tok", []string{"deploy", "web"}, 2, "usage: cutover deploy SERVICE VERSION", ""},
		{"deploy extra argument", url, "tok", []string{"deploy", "web", "v2", "v3"}, 2, `unexpected "v3"`, ""},
		{"unknown flag", url, "", []string{"status", "--colour"}, 2, "usage: cutover status", ""},
		{"bad limit", url, "", []string{"history", "api", "--limit", "x"}, 2, "usage: cutover history", ""},
		{"bad colour", url, "", []string{"logs", "web", "--color", "red"}, 2, "blue or green", ""},
		{"unknown service", url, "", []string{"status", "nope"}, 1, `cutover: unknown service "nope"`, ""},
		{"unreachable", dead, "", []string{"status"}, 1, "is `cutover serve` running?", ""},
		{"unreachable names url", dead, "", []string{"promote", "web"}, 1, dead, ""},
		{"no token", url, "", []string{"promote", "web"}, 1, "CUTOVER_TOKEN", ""},
		{"wrong token", url, "nope", []string{"rollback", "web"}, 1, "cutover: rollback web: missing or wrong bearer token", ""},
		{"promote", url, "tok", []string{"promote", "web"}, 0, "", "web: promote accepted; phase shifting"},
		{"deploy busy", url, "tok", []string{"deploy", "web", "v3"}, 1, "conflict", ""},
		{"deploy flags after args", url, "tok", []string{"deploy", "api", "v9", "--strategy", "all-at-once"}, 0, "", "api: deploying v9 to green (deployment d1)"},
		{"api flag on command", "http://127.0.0.1:1", "tok", []string{"pause", "web", "--api", url}, 0, "", "pause accepted"},
		{"help", url, "", []string{"help"}, 0, "", "deploy"},
		{"command help", url, "", []string{"deploy", "-h"}, 0, "", "-strategy"},
		{"serve unavailable", url, "", []string{"serve"}, 1, "not available", ""},
		{"version", url, "", []string{"version"}, 0, "", "cutover "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.url, tt.token, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderrHas) || !strings.Contains(r.stdout, tt.stdoutHas) {
				t.Fatalf("got %d\nstdout: %s\nstderr: %s\nwant %d, stderr with %q, stdout with %q", r.code, r.stdout, r.stderr, tt.code, tt.stderrHas, tt.stdoutHas)
			}
			if tt.code != 0 && tt.code != 2 && !strings.HasPrefix(r.stderr, "cutover: ") {
				t.Errorf("error not prefixed with cutover: %q", r.stderr)
			}
		})
	}
	calls := strings.Join(b.Calls(), "\n")
	for _, want := range []string{"[promote web]", "[deploy api v9 all-at-once user]", "[pause web]"} {
		if !strings.Contains(calls, want) {
			t.Errorf("daemon did not get %s:\n%s", want, calls)
		}
	}
	if strings.Contains(calls, "rollback") {
		t.Errorf("rollback with a wrong token reached the daemon:\n%s", calls)
	}
}

func TestServeAndDemoDelegate(t *testing.T) {
	var gotPath string
	var gotAccept bool
	var gotArgs []string
	cmds := cli.Commands{
		Serve: func(ctx context.Context, o cli.ServeOptions, stdout, stderr io.Writer) int {
			gotPath, gotAccept = o.Config, o.AcceptEmptyStore
			return 0
		},
		Demo: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			gotArgs = args
			return 4
		},
	}
	if r := runWith(t, "", "", cmds, "serve", "-c", "prod.yaml"); r.code != 0 || gotPath != "prod.yaml" {
		t.Errorf("serve: %d path %q", r.code, gotPath)
	}
	if r := runWith(t, "", "", cmds, "serve"); r.code != 0 || gotPath != "cutover.yaml" || gotAccept {
		t.Errorf("serve default: %d path %q accept-empty-store %v", r.code, gotPath, gotAccept)
	}
	if r := runWith(t, "", "", cmds, "serve", "--accept-empty-store"); r.code != 0 || !gotAccept {
		t.Errorf("serve --accept-empty-store: %d, accept-empty-store %v", r.code, gotAccept)
	}
	if r := runWith(t, "", "", cmds, "demo", "--keep"); r.code != 4 || fmt.Sprint(gotArgs) != "[--keep]" {
		t.Errorf("demo: %d args %q", r.code, gotArgs)
	}
}

func TestLogs(t *testing.T) {
	b := cannedBackend()
	b.SetLogs("web", "listening on 127.0.0.1:9001\n")
	url := daemon(t, b, api.Options{})
	r := run(t, url, "", "logs", "web", "--color", "green")
	if r.code != 0 || r.stdout != "[green] listening on 127.0.0.1:9001\n" {
		t.Fatalf("logs: %+v", r)
	}
}

// cli.Main is the entry point with the process's environment and no serve
// or demo: a command that needs neither works through it, and serve says
// it is unavailable rather than failing obscurely.
func TestMainEntryPoint(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cli.Main(context.Background(), []string{"help"}, strings.NewReader(""), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "usage: cutover") {
		t.Fatalf("cli.Main help: exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := cli.Main(context.Background(), []string{"serve"}, strings.NewReader(""), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "not available") {
		t.Fatalf("cli.Main serve: exit %d, stderr %q", code, stderr.String())
	}
}
