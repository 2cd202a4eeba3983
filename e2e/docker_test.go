package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/cutover/cutover/internal/testsupport"
)

// The secret values of the Docker tests: they must reach the containers
// and appear in no output of cutover's.
const (
	dockerSecretFile = "pw-from-file-4b9e1c"
	dockerSecretEnv  = "token-from-env-77d2aa"
	dockerEnvFileVal = "key-from-env-file-0f3c"
)

// dockerEngine starts a dockerd for the test and builds the test images
// on it: app:v1, app:v2 (the same app) and app:crash (exits at once).
func dockerEngine(t *testing.T, o testsupport.DockerdOptions) *testsupport.Dockerd {
	t.Helper()
	eng := testsupport.StartDockerd(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for tag, extra := range map[string]string{"app:v1": "", "app:v2": "", "app:crash": "ENV APP_CRASH=1"} {
		if err := testsupport.BuildImage(ctx, eng.Host, tag, extra); err != nil {
			t.Fatal(err)
		}
	}
	return eng
}

// newDockerEnv writes a config whose service runs app:${VERSION} on hosts.
func newDockerEnv(t *testing.T, hosts []string, network string, steps ...string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.api = "127.0.0.1:" + freePort(t)
	e.public = "127.0.0.1:" + freePort(t)
	e.preview = "127.0.0.1:" + freePort(t)
	os.WriteFile(filepath.Join(e.dir, "db-password"), []byte(dockerSecretFile+"\n"), 0o600)
	os.WriteFile(filepath.Join(e.dir, "web.env"), []byte("API_KEY="+dockerEnvFileVal+"\n"), 0o600)
	stepYAML := ""
	if len(steps) > 0 {
		stepYAML = "      steps:\n"
		for _, s := range steps {
			stepYAML += "        - " + s + "\n"
		}
	}
	quoted := make([]string, len(hosts))
	for i, h := range hosts {
		quoted[i] = fmt.Sprintf("%q", h)
	}
	cfg := fmt.Sprintf(`api:
  listen: %s
services:
  web:
    listen: %s
    preview_listen: %s
    instances: 2
    runtime:
      docker:
        image: app:${VERSION}
        hosts: [%s]
        port: 8080
        network: %q
        pull: never
        env: {APP_ENV: e2e}
        env_file: web.env
        secrets:
          DB_PASSWORD: {file: db-password}
          TOKEN: {env: CUTOVER_E2E_TOKEN}
        labels: {team: web}
        stop_timeout: 5s
        start_timeout: 30s
    health:
      interval: 200ms
      timeout: 1s
      healthy_threshold: 1
      unhealthy_threshold: 2
    drain_timeout: 2s
    strategy:
%s      analysis:
        interval: 300ms
        max_error_rate: 1%%
        max_p99_latency: 2s
        min_requests: 20
    keep_previous: 1h
    quiet_period: 1s
`, e.api, e.public, e.preview, strings.Join(quoted, ", "), network, stepYAML)
	e.cfg = filepath.Join(e.dir, "cutover.yaml")
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CUTOVER_E2E_TOKEN", dockerSecretEnv)
	t.Cleanup(e.stop)
	return e
}

// serviceContainers lists the running containers of service web on an
// engine, sorted by ID.
func serviceContainers(t *testing.T, host string) []container.Summary {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", "cutover.service=web"))})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list, func(a, b container.Summary) int { return strings.Compare(a.ID, b.ID) })
	return list
}

func containerIDs(list []container.Summary) []string {
	ids := make([]string, len(list))
	for i, c := range list {
		ids[i] = c.ID[:12] + "/" + c.Labels["cutover.color"] + "/" + c.Labels["cutover.version"]
	}
	return ids
}

// TestDockerReleaseCycle deploys, canaries, promotes and rolls back
// containers under a client that never retries, survives a kill -9 of
// the daemon with the same containers, rolls back a crash-looping image,
// reads logs through the Engine API and never shows a secret.
func TestDockerReleaseCycle(t *testing.T) {
	eng := dockerEngine(t, testsupport.DockerdOptions{Bridge: true})
	e := newDockerEnv(t, []string{eng.Host}, "", "{weight: 10, pause: 1s}", "{weight: 50, pause: 1s}")
	e.start()
	var outputs strings.Builder
	run := func(want int, args ...string) string {
		out := e.mustCLI(want, args...)
		outputs.WriteString(out)
		return out
	}

	began := time.Now()
	run(0, "deploy", "web", "v1", "--wait", "--strategy", "all-at-once")
	healthy := time.Since(began)
	t.Logf("FIGURE deploy of v1 to healthy and live, 2 containers: %s", healthy.Round(time.Millisecond))
	if n := len(serviceContainers(t, eng.Host)); n != 2 {
		t.Fatalf("%d containers run v1, want 2", n)
	}

	tr := e.startTraffic(4)
	time.Sleep(300 * time.Millisecond)
	out := run(0, "deploy", "web", "v2", "--wait")
	if !strings.Contains(out, "promoted") {
		t.Errorf("deploy v2 output lacks the promotion:\n%s", out)
	}
	if st := e.status(); st.Live == nil || st.Live.Version != "v2" || st.Previous == nil || st.Previous.Version != "v1" {
		t.Fatalf("after promotion: %+v", st)
	}
	run(0, "rollback", "web")
	e.waitFor("v1 live again", 20*time.Second, func(st status) bool { return st.Live != nil && st.Live.Version == "v1" })
	time.Sleep(300 * time.Millisecond)
	tr.halt()
	t.Logf("FIGURE requests during canary, promotion and rollback of containers: %d ok, %d failed (v1 %d, v2 %d)",
		tr.ok.Load(), tr.failed.Load(), tr.served("v1"), tr.served("v2"))
	if tr.failed.Load() != 0 {
		t.Errorf("%d requests failed during the switches (last: %v)", tr.failed.Load(), tr.lastErr.Load())
	}
	if tr.served("v2") == 0 || tr.served("v1") == 0 {
		t.Errorf("traffic did not reach both versions: v1 %d, v2 %d", tr.served("v1"), tr.served("v2"))
	}

	logs := run(0, "logs", "web", "--color", "blue")
	if !strings.Contains(logs, "listening on :8080 as v1 blue web-blue-1") {
		t.Errorf("cutover logs --color blue lacks the container's output:\n%s", logs)
	}

	before := containerIDs(serviceContainers(t, eng.Host))
	e.kill9()
	e.start()
	st := e.waitFor("v1 live after kill -9", 20*time.Second, func(st status) bool { return st.Live != nil && st.Live.Version == "v1" })
	time.Sleep(time.Second) // let any wrong duplicate appear
	after := containerIDs(serviceContainers(t, eng.Host))
	t.Logf("containers before kill -9 %v, after %v", before, after)
	if !slices.Equal(before, after) {
		t.Errorf("containers changed across kill -9 of the daemon:\nbefore %v\nafter  %v", before, after)
	}
	tr2 := e.startTraffic(2)
	time.Sleep(500 * time.Millisecond)
	tr2.halt()
	if tr2.failed.Load() != 0 || tr2.served("v1") == 0 {
		t.Errorf("adopted pool serves badly: %d ok, %d failed", tr2.ok.Load(), tr2.failed.Load())
	}
	_ = st

	code, out := e.cli("deploy", "web", "crash", "--wait")
	outputs.WriteString(out)
	if code != 3 {
		t.Errorf("deploy of a crashing image: exit %d, want 3:\n%s", code, out)
	}
	if !strings.Contains(out, "crashing on purpose") && !strings.Contains(out, "exited with status 3") {
		t.Errorf("deploy output does not say why the image failed:\n%s", out)
	}
	if st := e.status(); st.Live == nil || st.Live.Version != "v1" {
		t.Errorf("after the crashing image: live %+v, want v1", st.Live)
	}

	outputs.WriteString(run(0, "status", "web", "--json"))
	outputs.WriteString(run(0, "history", "web", "--json"))
	outputs.WriteString(run(0, "logs", "web"))
	for _, args := range [][]string{{"diff", "web", "-c", e.cfg}, {"diff", "web", "-c", e.cfg, "--json"}} {
		// The drift check describes both pools, env included (secrets
		// as hashes).
		code, out := e.cli(args...)
		if code != 0 && code != 1 {
			t.Errorf("cutover %s: exit %d:\n%s", strings.Join(args, " "), code, out)
		}
		outputs.WriteString(out)
	}
	outputs.WriteString(metrics(t, e))
	outputs.WriteString(e.logs.String())
	for _, s := range []string{dockerSecretFile, dockerSecretEnv, dockerEnvFileVal} {
		if strings.Contains(outputs.String(), s) {
			t.Errorf("a secret value appears in cutover's output (status, history, logs, metrics, daemon log)")
		}
	}
	// ...while the containers have them.
	c := serviceContainers(t, eng.Host)[0]
	for _, p := range c.Ports {
		if p.PrivatePort == 8080 && p.PublicPort != 0 {
			if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/sha?name=DB_PASSWORD", p.PublicPort)); got != sha256Hex(dockerSecretFile) {
				t.Errorf("container's DB_PASSWORD has sha %s", got)
			}
		}
	}
}

// TestDockerHosts spreads a pool over two engines (host networking), the
// second reached over tcp://, loses that one while it serves (its
// container is replaced on the other), and then fails the next
// deployment before any traffic, naming the lost host.
func TestDockerHosts(t *testing.T) {
	a, b := dockerEngine(t, testsupport.DockerdOptions{}), dockerEngine(t, testsupport.DockerdOptions{TCP: true})
	e := newDockerEnv(t, []string{a.Host, b.TCPHost}, "host")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	if na, nb := len(serviceContainers(t, a.Host)), len(serviceContainers(t, b.Host)); na != 1 || nb != 1 {
		t.Fatalf("containers per host: %d and %d, want one on each", na, nb)
	}
	tr := e.startTraffic(2)
	time.Sleep(300 * time.Millisecond)
	b.Stop() // the second host dies while it serves
	deadline := time.Now().Add(30 * time.Second)
	for len(serviceContainers(t, a.Host)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the lost host's container was not replaced on the other host:\n%s", e.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	lost := tr.failed.Load()
	t.Logf("FIGURE requests failed while a host died under traffic: %d of %d", lost, lost+tr.ok.Load())

	code, out := e.cli("deploy", "web", "v2", "--wait")
	tr.halt()
	if code == 0 || !strings.Contains(out, b.TCPHost) || !strings.Contains(out, "unreachable") {
		t.Errorf("deploy with a host down: exit %d, want a failure naming %s:\n%s", code, b.TCPHost, out)
	}
	if tr.served("v2") != 0 {
		t.Errorf("%d requests reached v2 although its deployment failed", tr.served("v2"))
	}
	if st := e.status(); st.Live == nil || st.Live.Version != "v1" {
		t.Errorf("live %+v after the failed deployment, want v1", st.Live)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func metrics(t *testing.T, e *env) string { return httpGet(t, "http://"+e.api+"/metrics") }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestDockerPullProgress deploys an image that the engine pulls from a
// registry (credentials from config.json): `deploy --wait` shows the
// pull's progress.
func TestDockerPullProgress(t *testing.T) {
	eng := testsupport.StartDockerd(t, testsupport.DockerdOptions{})
	reg := testsupport.StartRegistry(t, "ci", "pull-secret-93c1")
	if err := reg.PushApp("web", "v1"); err != nil {
		t.Fatal(err)
	}
	cfgDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("ci:pull-secret-93c1"))
	os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"auths":{"`+reg.Addr+`":{"auth":"`+auth+`"}}}`), 0o600)
	t.Setenv("DOCKER_CONFIG", cfgDir)
	e := newDockerEnv(t, []string{eng.Host}, "host")
	cfg, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, []byte(strings.Replace(strings.Replace(string(cfg), "image: app:${VERSION}", "image: "+reg.Addr+"/web:${VERSION}", 1),
		"pull: never", "pull: missing", 1)), 0o644)
	e.start()
	out := e.mustCLI(0, "deploy", "web", "v1", "--wait")
	if !strings.Contains(out, "pull") || !strings.Contains(out, "pulled "+reg.Addr+"/web:v1 on "+eng.Host+": 1/1 layers") {
		t.Errorf("deploy --wait shows no pull progress:\n%s", out)
	}
	t.Logf("deploy --wait:\n%s", out)
	if strings.Contains(out+e.logs.String(), "pull-secret-93c1") {
		t.Error("the registry password appears in cutover's output")
	}
}

// TestDockerCrashLoopUnderTrafficRollsBack deploys a release whose
// containers pass their health gate, take canary traffic, and then keep
// exiting: the pool's crash loop must fail it, and the controller roll
// back to v1 without the operator, with v1 serving throughout and no
// green container left behind.
func TestDockerCrashLoopUnderTrafficRollsBack(t *testing.T) {
	eng := dockerEngine(t, testsupport.DockerdOptions{Bridge: true})
	e := newDockerEnv(t, []string{eng.Host}, "", "{weight: 50, pause: 60s}")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait", "--strategy", "all-at-once")
	tr := e.startTraffic(4)
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	code, out := e.cli("deploy", "web", "v2", "--wait", "--env", "APP_EXIT_AFTER=1500ms")
	took := time.Since(began)
	time.Sleep(300 * time.Millisecond)
	tr.halt()
	t.Logf("deploy of the crash-looping v2 ended after %s (exit %d):\n%s", took.Round(time.Millisecond), code, out)
	// Requests in flight on a container that exits abruptly are lost:
	// the figure is printed, not held to zero.
	t.Logf("FIGURE requests while v2 crash-looped under canary traffic: %d ok, %d failed (v1 %d, v2 %d; last failure: %v)",
		tr.ok.Load(), tr.failed.Load(), tr.served("v1"), tr.served("v2"), tr.lastErr.Load())
	if code != 3 || !strings.Contains(out, "rolled back") || !strings.Contains(out, "crash-looping") {
		t.Errorf("deploy of a release that crash-loops after it took traffic: exit %d, want 3 and a rollback naming the crash loop:\n%s", code, out)
	}
	if took >= 55*time.Second {
		t.Errorf("the rollback waited %s, for the step's pause, not for the crash loop", took)
	}
	if tr.served("v2") == 0 {
		t.Errorf("v2 took no traffic before it crash-looped: the test did not test a crash loop under traffic")
	}
	if tr.served("v1") == 0 {
		t.Errorf("v1 served nothing")
	}
	e.waitFor("v1 live again", 20*time.Second, func(st status) bool { return st.Live != nil && st.Live.Version == "v1" })
	deadline := time.Now().Add(20 * time.Second)
	for {
		var green []string
		for _, c := range serviceContainers(t, eng.Host) {
			if c.Labels["cutover.color"] != "blue" || c.Labels["cutover.version"] != "v1" {
				green = append(green, c.ID[:12]+"/"+c.Labels["cutover.color"]+"/"+c.Labels["cutover.version"])
			}
		}
		n := len(serviceContainers(t, eng.Host))
		if len(green) == 0 && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the rollback the engine runs %d containers, others than v1's: %v", n, green)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
