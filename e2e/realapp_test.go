package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/testsupport"
)

// These tests release a real application on a real PostgreSQL: e2e/pgapp
// migrates its schema at start like the apps that broke releases, refuses
// an old schema, and needs a secret.

var (
	pgappOnce sync.Once
	pgappPath string
	pgappErr  error
)

// pgapp builds the test application once.
func pgapp(t *testing.T) string {
	t.Helper()
	pgappOnce.Do(func() {
		pgappPath = filepath.Join(filepath.Dir(binary), "pgapp")
		out, err := exec.Command("go", "build", "-o", pgappPath, "./pgapp").CombinedOutput()
		if err != nil {
			pgappErr = fmt.Errorf("building pgapp: %v\n%s", err, out)
		}
	})
	if pgappErr != nil {
		t.Fatal(pgappErr)
	}
	return pgappPath
}

// realApp is the service part of a config running pgapp on database url.
type realApp struct {
	url      string
	env      map[string]string // more instance env
	hooks    string            // YAML under hooks:, indented 6
	parallel int               // start.parallel; 0 leaves the default
	steps    string            // strategy steps, YAML flow maps
	secret   string            // the file APP_SECRET comes from
}

// newRealAppEnv writes a config for app and returns the env (not started).
func newRealAppEnv(t *testing.T, app realApp) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.api = "127.0.0.1:" + freePort(t)
	e.public = "127.0.0.1:" + freePort(t)
	e.preview = "127.0.0.1:" + freePort(t)
	if app.secret == "" {
		app.secret = filepath.Join(e.dir, "app-secret")
		if err := os.WriteFile(app.secret, []byte("s3cr3t-"+filepath.Base(e.dir)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var env strings.Builder
	fmt.Fprintf(&env, "          DATABASE_URL: %q\n", app.url)
	for k, v := range app.env {
		fmt.Fprintf(&env, "          %s: %q\n", k, v)
	}
	start := ""
	if app.parallel > 0 {
		start = fmt.Sprintf("    start: {parallel: %d}\n", app.parallel)
	}
	steps := ""
	if app.steps != "" {
		steps = "      steps:\n        - " + app.steps + "\n"
	}
	hooks := ""
	if app.hooks != "" {
		hooks = "    hooks:\n" + app.hooks
	}
	cfg := fmt.Sprintf(`api:
  listen: %s
services:
  web:
    listen: %s
    preview_listen: %s
    instances: 2
%s    runtime:
      process:
        command: [%q]
        env:
%s        secrets:
          APP_SECRET: {file: %q}
        stop_timeout: 5s
        start_timeout: 30s
    health:
      interval: 200ms
      timeout: 2s
      healthy_threshold: 1
      unhealthy_threshold: 2
    drain_timeout: 3s
    strategy:
%s      analysis:
        interval: 300ms
        max_error_rate: 1%%
        min_requests: 20
    keep_previous: 1h
    quiet_period: 1s
%s`, e.api, e.public, e.preview, start, pgapp(t), env.String(), app.secret, steps, hooks)
	e.cfg = filepath.Join(e.dir, "cutover.yaml")
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	return e
}

// history returns the service's history, newest first.
func (e *env) history() []struct {
	Version, Outcome, Reason string
	Events                   []struct{ Type, Message, Output string }
} {
	e.t.Helper()
	var h []struct {
		Version, Outcome, Reason string
		Events                   []struct{ Type, Message, Output string }
	}
	if err := json.Unmarshal([]byte(e.mustCLI(0, "history", "web", "--json", "--limit", "0")), &h); err != nil {
		e.t.Fatal(err)
	}
	return h
}

// The app migrates its schema at start, without a lock: two instances
// started at once race on it. With instances started one after another
// (start.parallel 1, the default) the first deployment and the upgrade
// succeed every time; so they do with the migration as a pre_provision
// release step and an app that refuses an old schema.
func TestRealAppFirstDeploymentAndUpgrade(t *testing.T) {
	pg := testsupport.StartPostgres(t)
	const rounds = 20
	for _, mode := range []string{"migrate at start", "pre_provision"} {
		ok := 0
		for i := range rounds {
			db := fmt.Sprintf("app_%s_%d", strings.ReplaceAll(mode[:3], " ", ""), i)
			pg.CreateDatabase(t, db)
			app := realApp{url: pg.URL(db)}
			if mode == "pre_provision" {
				app.hooks = fmt.Sprintf("      pre_provision: [%q]\n", pgapp(t)+" migrate")
			} else {
				app.env = map[string]string{"RUN_MIGRATIONS": "1"}
			}
			e := newRealAppEnv(t, app)
			e.start()
			first, out1 := e.cli("deploy", "web", "v1", "--wait")
			up, out2 := e.cli("deploy", "web", "v2", "--strategy", "all-at-once", "--wait")
			if first == 0 && up == 0 {
				ok++
			} else {
				t.Errorf("%s, round %d: first deployment exit %d, upgrade exit %d\n%s\n%s", mode, i+1, first, up, out1, out2)
			}
			if v := pg.SQL(t, db, "SELECT max(v) FROM schema_version"); v != "2" {
				t.Errorf("%s, round %d: schema at %s after v2, want 2", mode, i+1, v)
			}
			e.stop()
		}
		t.Logf("%s: %d of %d first deployments and upgrades succeeded", mode, ok, rounds)
	}
}

// An expand migration in pre_provision runs while the old version serves a
// non-retrying client: no request fails, and the new version starts only
// after the schema it needs is there.
func TestExpandMigrationWhileTheOldVersionServes(t *testing.T) {
	pg := testsupport.StartPostgres(t)
	pg.CreateDatabase(t, "app")
	e := newRealAppEnv(t, realApp{url: pg.URL("app"), steps: "{weight: 50, pause: 2s}",
		hooks: fmt.Sprintf("      pre_provision: [%q]\n", pgapp(t)+" migrate")})
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")
	tr := e.startTraffic(4)
	time.Sleep(500 * time.Millisecond)
	e.mustCLI(0, "deploy", "web", "v2", "--wait")
	tr.halt()
	if f := tr.failed.Load(); f != 0 || tr.served("v1") == 0 || tr.served("v2") == 0 {
		t.Fatalf("during the migrating canary: %d failed (last: %v), v1 served %d, v2 served %d",
			f, tr.lastErr.Load(), tr.served("v1"), tr.served("v2"))
	}
	t.Logf("migrating canary: %d requests, 0 failed (v1 %d, v2 %d)", tr.ok.Load(), tr.served("v1"), tr.served("v2"))
	h := e.history()
	var hookOut string
	for _, ev := range h[0].Events {
		if ev.Type == "hook" && strings.Contains(ev.Message, "pre_provision") {
			hookOut += ev.Output
		}
	}
	if !strings.Contains(hookOut, "migrated the schema to 2") {
		t.Errorf("the pre_provision hook's output is not in history: %q", hookOut)
	}
}

// A failing pre_provision hook fails the deployment before any instance of
// the new version starts.
func TestFailingPreProvisionStartsNothing(t *testing.T) {
	pg := testsupport.StartPostgres(t)
	pg.CreateDatabase(t, "app")
	e := newRealAppEnv(t, realApp{url: pg.URL("app"), env: map[string]string{"RUN_MIGRATIONS": "1"},
		hooks: "      pre_provision: [\"echo expand migration refused >&2; exit 4\"]\n"})
	e.start()
	code, out := e.cli("deploy", "web", "v1", "--wait")
	if code != 3 {
		t.Fatalf("deploy with a failing pre_provision: exit %d, want 3\n%s", code, out)
	}
	h := e.history()
	if h[0].Outcome != "failed" || !strings.Contains(h[0].Reason, "pre_provision") {
		t.Fatalf("history[0] = %s %q, want failed naming pre_provision", h[0].Outcome, h[0].Reason)
	}
	b, _ := os.ReadFile(e.recordFile())
	if len(pidsIn(b)) != 0 {
		t.Fatalf("instances were started although pre_provision failed: %s", b)
	}
	if v := pg.SQL(t, "app", "SELECT count(*) FROM pg_tables WHERE tablename = 'items'"); v != "0" {
		t.Errorf("the app ran (its schema exists) although pre_provision failed")
	}
}

// A secret reaches the instance and nothing else: no daemon log line, no
// status, history, event or metric, no file of the state directory. And
// the instance's environment holds nothing of the daemon's own (its token).
func TestSecretReachesTheInstanceAndNothingElse(t *testing.T) {
	pg := testsupport.StartPostgres(t)
	pg.CreateDatabase(t, "app")
	const secret = "correct-horse-battery-staple-7731"
	const daemonToken = "daemon-only-token-5512"
	secretFile := filepath.Join(t.TempDir(), "app-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CUTOVER_TOKEN", daemonToken) // the daemon inherits it; its instances must not
	// The release hook gets the secret too (a migration needs the database
	// password), and not the daemon's token; it fails the deploy otherwise.
	e := newRealAppEnv(t, realApp{url: pg.URL("app"), env: map[string]string{"RUN_MIGRATIONS": "1"}, secret: secretFile,
		hooks: "      pre_provision: ['test -n \"$APP_SECRET\" && test -z \"${CUTOVER_TOKEN:-}\"']\n"})
	e.start()
	var seen strings.Builder
	seen.WriteString(e.mustCLI(0, "deploy", "web", "v1", "--wait", "--json")) // every event of the deployment
	seen.WriteString(e.mustCLI(0, "deploy", "web", "v2", "--wait", "--json", "--strategy", "all-at-once"))
	seen.WriteString(e.mustCLI(0, "status", "web", "--json"))
	seen.WriteString(e.mustCLI(0, "history", "web", "--json"))
	seen.WriteString(e.mustCLI(0, "logs", "web"))
	seen.WriteString(get(t, "http://"+e.api+"/metrics"))
	seen.WriteString(e.logs.String())
	filepath.Walk(e.stateDir(), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			seen.Write(b)
		}
		return nil
	})
	if strings.Contains(seen.String(), secret) {
		t.Errorf("the secret's value reached an output (daemon log, status, history, events, metrics, logs or the state dir)")
	}
	// The instance got it: it shows its hash.
	resp := get(t, "http://"+e.public+"/")
	sum := sha256.Sum256([]byte(secret))
	if !strings.Contains(resp, hex.EncodeToString(sum[:8])) {
		t.Errorf("the instance did not get the secret: %s", resp)
	}
	b, _ := os.ReadFile(e.recordFile())
	pids := pidsIn(b)
	if len(pids) == 0 {
		t.Fatal("no instance recorded")
	}
	for _, pid := range pids {
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(env), "CUTOVER_TOKEN") || strings.Contains(string(env), daemonToken) {
			t.Errorf("instance %d inherited the daemon's CUTOVER_TOKEN", pid)
		}
		if !strings.Contains(string(env), "APP_SECRET="+secret) {
			t.Errorf("instance %d has no APP_SECRET", pid)
		}
	}
}
